"""``SubscriptionService``: durable cursors that wake workers (PROTOCOL.md §6, §7).

How it works, in one place:

- The store's notifier calls ``_on_change(path)`` after every create/append/close/delete. That
  only marks the path dirty; one worker task drains dirty paths, links newly discovered glob
  matches at position 0, unlinks deleted streams, and wakes idle subscriptions with pending work.
- Each subscription has its own ``asyncio.Lock``; every state change happens under it and is
  saved (``StateStore.save``) before any answer leaves, so a 2xx is durable. Webhook POSTs run
  outside the lock and re-check the wake they belong to when they come back.
- One timer per subscription fires at the earlier of its lease deadline and its next webhook
  retry. A lease is suspended while a webhook delivery is in flight or a retry is scheduled:
  the receiver never saw the wake, so there is no worker whose liveness it bounds.
- Fencing (§7.3): tokens name the subscription, its incarnation (random per create, so a
  re-created id refuses the old tokens) and the generation; requests must also repeat the
  current ``generation`` and ``wake_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from millstream.log import (
    AppendRequest,
    KvWrite,
    LogError,
    StreamGone,
    StreamInfo,
    StreamNotFound,
    format_offset,
    parse_offset,
)
from millstream.log import Store as LogStore

from ._config import SubscriptionConfig, is_reserved_path, parse_stream_path
from ._errors import SubscriptionError
from ._glob import glob_match
from ._keys import KeyRing, TokenClaims
from ._persist import StateStore
from ._state import Subscription
from ._webhook import WebhookSender, backoff_delay

__all__ = ["SubscriptionEngine", "WakeRequest"]

log = logging.getLogger("millstream.subscriptions")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _literal_prefix(pattern: str) -> str:
    """The part of ``pattern`` before its first wildcard segment, for narrowing listings."""
    literal: list[str] = []
    for segment in pattern.split("/"):
        if segment in ("*", "**"):
            return "/".join(literal) + "/" if literal else ""
        literal.append(segment)
    return pattern


class SubscriptionEngine:
    """All subscription state and behaviour; the ASGI layer only parses and answers."""

    def __init__(self, store: LogStore, *, fence: Callable[[], KvWrite] | None = None) -> None:
        self._store = store
        self._state = StateStore(store, fence)
        self._subs: dict[str, Subscription] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._registry = asyncio.Lock()
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._delivering: set[str] = set()  # ids with a webhook POST in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._keys: KeyRing | None = None
        self._sender: WebhookSender | None = None
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def subscription_count(self) -> int:
        return len(self._subs)

    @property
    def keys(self) -> KeyRing:
        if self._keys is None:
            raise SubscriptionError("UNAVAILABLE", "subscriptions are not started")
        return self._keys

    async def start(self) -> None:
        self._keys = await self._state.load_keys()
        self._sender = WebhookSender(self._keys)
        for sub in await self._state.load_all():
            self._subs[sub.id] = sub
        self._store.notifier.add_listener(self._on_change)
        self._worker = asyncio.create_task(self._drain_dirty(), name="subscriptions-worker")
        for sub in list(self._subs.values()):
            await self._recover(sub)

    async def aclose(self) -> None:
        self._closing = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = [t for t in (self._worker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sender is not None:
            await self._sender.aclose()

    def _spawn(self, coro: Any, name: str) -> None:
        if self._closing:
            coro.close()
            return
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("subscription task %s failed", task.get_name(), exc_info=task.exception())

    def _lock(self, sub_id: str) -> asyncio.Lock:
        lock = self._locks.get(sub_id)
        if lock is None:
            lock = self._locks[sub_id] = asyncio.Lock()
        return lock

    async def _recover(self, sub: Subscription) -> None:
        """After a restart: link streams created while we were down, resume wakes and timers."""
        async with self._lock(sub.id):
            changed = False
            if sub.config.pattern is not None:
                for path in await self._matching_paths(sub.config):
                    if path not in sub.links:
                        info = await self._head(path)
                        sub.link(path, "glob", 0, info.stream_id if info else None)
                        changed = True
            if sub.wake_id is not None and sub.holder is None:
                if sub.config.type == "pull-wake":
                    await self._write_wake_event(sub)  # the event may not have been written
                elif sub.next_attempt_at is None and sub.lease_deadline is None:
                    sub.lease_deadline = time.time() + sub.config.lease_ttl_ms / 1000
                    changed = True
            if not await self._maybe_wake(sub) and changed:
                await self._state.save(sub)
            self._schedule(sub)

    # -- change notifications -------------------------------------------------------------

    def _on_change(self, path: str) -> None:
        # With no subscriptions nothing can reference ``path`` (a new subscription backfills
        # existing streams at their tail), so the common case costs one dict check per append.
        if not self._subs or self._closing or is_reserved_path(path):
            return
        self._dirty.add(path)
        self._dirty_event.set()

    async def _drain_dirty(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            paths, self._dirty = self._dirty, set()
            for path in paths:
                try:
                    await self._process_change(path)
                except Exception:  # one bad path must not stop every subscription
                    log.exception("subscriptions could not process a change of %s", path)

    async def _process_change(self, path: str) -> None:
        info: StreamInfo | None = None
        looked_up = False
        for sub in list(self._subs.values()):
            config = sub.config
            matches = (
                config.pattern is not None
                and path != config.wake_stream
                and glob_match(config.pattern, path)
            )
            if not matches and path not in sub.links:
                continue
            if not looked_up:
                info, looked_up = await self._head(path), True
            async with self._lock(sub.id):
                if sub.deleted:
                    continue
                changed = self._relink(sub, path, info, matches)
                if not await self._maybe_wake(sub, path) and changed:
                    await self._state.save(sub)

    @staticmethod
    def _relink(sub: Subscription, path: str, info: StreamInfo | None, matches: bool) -> bool:
        """Bring the link of ``path`` in line with the stream's existence; True if changed."""
        link = sub.links.get(path)
        if info is None:
            if link is None:
                return False
            if link.explicit:  # the explicit link outlives the stream; a new one starts at 0
                changed = link.acked != 0 or link.glob or link.stream_id is not None
                link.acked, link.glob, link.stream_id = 0, False, None
                return changed
            del sub.links[path]
            return True
        if link is None:
            # §6.2: a stream discovered by a matching append is linked *before* that append.
            sub.link(path, "glob", 0, info.stream_id)
            return True
        changed = False
        if matches and not link.glob:
            link.glob, changed = True, True
        if link.stream_id != info.stream_id:
            if link.stream_id is not None:  # deleted and re-created: a fresh log
                link.acked = 0
            link.stream_id, changed = info.stream_id, True
        return changed

    # -- store helpers --------------------------------------------------------------------

    async def _head(self, path: str) -> StreamInfo | None:
        try:
            return await self._store.head(path)
        except (StreamNotFound, StreamGone):
            return None

    async def _tails(self, sub: Subscription) -> dict[str, int]:
        tails: dict[str, int] = {}
        for path in sub.links:
            info = await self._head(path)
            tails[path] = info.tail if info is not None else 0
        return tails

    async def _matching_paths(self, config: SubscriptionConfig) -> list[str]:
        assert config.pattern is not None
        return [
            path
            for path in await self._store.list_paths(_literal_prefix(config.pattern))
            if not is_reserved_path(path)
            and path != config.wake_stream
            and glob_match(config.pattern, path)
        ]

    def _stream_infos(self, sub: Subscription, tails: dict[str, int]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in sorted(sub.links):
            link = sub.links[path]
            tail = tails.get(path, 0)
            out.append(
                {
                    "path": path,
                    "link_type": link.link_type,
                    "acked_offset": format_offset(link.acked),
                    "tail_offset": format_offset(tail),
                    "has_pending": tail > link.acked,
                }
            )
        return out

    # -- wakes ----------------------------------------------------------------------------

    async def _maybe_wake(self, sub: Subscription, trigger: str | None = None) -> bool:
        """Start a wake if ``sub`` is idle with pending work (call under its lock)."""
        if sub.deleted or self._closing or not sub.idle:
            return False
        tails = await self._tails(sub)
        pending = [p for p, link in sorted(sub.links.items()) if tails[p] > link.acked]
        if not pending:
            return False
        await self._start_wake(sub, tails, trigger if trigger in pending else pending[0])
        return True

    async def _start_wake(
        self, sub: Subscription, tails: dict[str, int], trigger: str, *, announce: bool = True
    ) -> None:
        sub.generation += 1
        sub.wake_id = "w_" + secrets.token_hex(12)
        sub.wake_snapshot = dict(tails)
        sub.wake_stream_hint = trigger
        if sub.config.type == "webhook":
            sub.lease_deadline = time.time() + sub.config.lease_ttl_ms / 1000
            await self._state.save(sub)
            self._spawn(self._deliver(sub, sub.wake_id), f"webhook-{sub.id}")
        else:
            await self._state.save(sub)
            if announce:
                await self._write_wake_event(sub)
        self._schedule(sub)

    async def _write_wake_event(self, sub: Subscription) -> None:
        """Append the §7.2 wake event to the subscription's wake stream."""
        wake_stream = sub.config.wake_stream
        if wake_stream is None:
            return
        event = {
            "type": "wake",
            "subscription_id": sub.id,
            "stream": sub.wake_stream_hint,
            "generation": sub.generation,
            "ts": int(time.time() * 1000),
        }
        try:
            await self._store.append(wake_stream, AppendRequest([orjson.dumps(event)]))
        except LogError as exc:
            log.warning(
                "subscription %s: cannot write a wake event to %s: %s", sub.id, wake_stream, exc
            )

    def _finish_wake(self, sub: Subscription) -> None:
        sub.clear_wake()
        sub.status = "active"
        sub.retry_count = 0
        sub.next_attempt_at = None

    # -- webhook delivery ------------------------------------------------------------------

    def webhook_body(self, sub: Subscription, tails: dict[str, int]) -> bytes:
        return orjson.dumps(
            {
                "subscription_id": sub.id,
                "wake_id": sub.wake_id,
                "generation": sub.generation,
                "streams": self._stream_infos(sub, tails),
                "callback_url": self.action_url(sub, "callback"),
                "callback_token": self.keys.issue_token(
                    sub.id, sub.incarnation, sub.generation, "callback"
                ),
            }
        )

    @staticmethod
    def action_url(sub: Subscription, action: str) -> str:
        return f"{sub.stream_root}__ds/subscriptions/{quote(sub.id, safe='')}/{action}"

    async def _deliver(self, sub: Subscription, wake_id: str) -> None:
        """One webhook attempt for ``wake_id``; schedules a retry or finishes the wake."""
        assert self._sender is not None
        assert sub.config.webhook_url is not None
        async with self._lock(sub.id):
            if sub.deleted or sub.wake_id != wake_id or sub.id in self._delivering:
                return
            tails = await self._tails(sub)
            sub.wake_snapshot = dict(tails)  # a retry carries the freshest tails
            body = self.webhook_body(sub, tails)
            self._delivering.add(sub.id)
        try:
            outcome = await self._sender.deliver(sub.config.webhook_url, body)
        finally:
            self._delivering.discard(sub.id)
        async with self._lock(sub.id):
            if sub.deleted or sub.wake_id != wake_id:
                return  # fenced meanwhile (callback, lease expiry, delete)
            now = time.time()
            if outcome.ok:
                sub.status, sub.retry_count, sub.next_attempt_at = "active", 0, None
                if outcome.done:
                    # §7.1: {"done": true} acks the snapshot's tails and releases the lease.
                    for path, tail in sub.wake_snapshot.items():
                        link = sub.links.get(path)
                        if link is not None and tail > link.acked:
                            link.acked = tail
                    self._finish_wake(sub)
                    if not await self._maybe_wake(sub):
                        await self._state.save(sub)
                else:
                    sub.lease_deadline = now + sub.config.lease_ttl_ms / 1000
                    await self._state.save(sub)
            else:
                sub.retry_count += 1
                delay = backoff_delay(sub.retry_count)
                sub.status, sub.next_attempt_at = "failed", now + delay
                log.warning(
                    "subscription %s: webhook attempt %d failed (%s); retry in %.1fs",
                    sub.id,
                    sub.retry_count,
                    outcome.detail,
                    delay,
                )
                await self._state.save(sub)
            self._schedule(sub)

    # -- timers: lease expiry and webhook retries --------------------------------------------

    def _schedule(self, sub: Subscription) -> None:
        handle = self._timers.pop(sub.id, None)
        if handle is not None:
            handle.cancel()
        if sub.deleted or self._closing or sub.wake_id is None:
            return
        deadline = sub.next_attempt_at if sub.next_attempt_at is not None else sub.lease_deadline
        if deadline is None:
            return
        delay = max(0.0, deadline - time.time())
        loop = asyncio.get_running_loop()
        self._timers[sub.id] = loop.call_later(
            delay, lambda: self._spawn(self._on_timer(sub), f"timer-{sub.id}")
        )

    async def _on_timer(self, sub: Subscription) -> None:
        async with self._lock(sub.id):
            self._timers.pop(sub.id, None)
            if sub.deleted or sub.wake_id is None:
                return
            now = time.time()
            if sub.next_attempt_at is not None:
                if now >= sub.next_attempt_at:
                    sub.next_attempt_at = None
                    self._spawn(self._deliver(sub, sub.wake_id), f"webhook-{sub.id}")
                    return
            elif sub.lease_deadline is not None and now >= sub.lease_deadline:
                if sub.id in self._delivering:
                    return  # the attempt in flight re-arms the lease when it returns
                # §7.3: an expired lease clears the holder and token; pending work re-wakes.
                log.info("subscription %s: lease of generation %d expired", sub.id, sub.generation)
                self._finish_wake(sub)
                if not await self._maybe_wake(sub):
                    await self._state.save(sub)
            self._schedule(sub)

    # -- control API (§6) -------------------------------------------------------------------

    def get(self, sub_id: str) -> Subscription:
        sub = self._subs.get(sub_id)
        if sub is None or sub.deleted:
            raise SubscriptionError("SUBSCRIPTION_NOT_FOUND", f"no subscription {sub_id!r}")
        return sub

    async def put(
        self, sub_id: str, config: SubscriptionConfig, stream_root: str
    ) -> tuple[Subscription, bool]:
        """Create, or re-confirm by config hash (§6.2). Returns (subscription, created)."""
        config_hash = config.hash()
        async with self._registry:
            existing = self._subs.get(sub_id)
            if existing is not None and not existing.deleted:
                if existing.config_hash != config_hash:
                    raise SubscriptionError(
                        "SUBSCRIPTION_ALREADY_EXISTS",
                        f"subscription {sub_id!r} exists with a different configuration",
                    )
                return existing, False
            sub = Subscription(
                id=sub_id,
                config=config,
                config_hash=config_hash,
                incarnation=secrets.token_hex(8),
                created_at=_now_iso(),
                stream_root=stream_root,
            )
            async with self._lock(sub_id):
                self._subs[sub_id] = sub  # from here on, changes wait for this lock
                try:
                    for path in config.streams:
                        info = await self._head(path)
                        sub.link(path, "explicit", info.tail if info else 0, _sid(info))
                    if config.pattern is not None:
                        for path in await self._matching_paths(config):
                            info = await self._head(path)
                            if info is not None:  # §6.2 eager backfill at the current tail
                                sub.link(path, "glob", info.tail, info.stream_id)
                    await self._state.save(sub)
                except BaseException:
                    self._subs.pop(sub_id, None)
                    raise
            return sub, True

    async def delete(self, sub_id: str) -> None:
        """Tombstone: in-flight callbacks, acks and releases fail from now on (§6.3)."""
        async with self._registry:
            sub = self._subs.get(sub_id)
            if sub is None:
                return
            async with self._lock(sub_id):
                sub.deleted = True
                self._subs.pop(sub_id, None)
                handle = self._timers.pop(sub_id, None)
                if handle is not None:
                    handle.cancel()
                await self._state.delete(sub_id)

    async def add_streams(self, sub_id: str, paths: Iterable[str]) -> None:
        sub = self.get(sub_id)
        async with self._lock(sub_id):
            self._check_alive(sub)
            changed = False
            for path in paths:
                link = sub.links.get(path)
                if link is not None:
                    changed |= not link.explicit
                    link.explicit = True
                    continue
                info = await self._head(path)  # §6.4: linked at the current tail
                sub.link(path, "explicit", info.tail if info else 0, _sid(info))
                changed = True
            if changed:
                await self._state.save(sub)

    async def remove_stream(self, sub_id: str, path: str) -> None:
        sub = self.get(sub_id)
        async with self._lock(sub_id):
            self._check_alive(sub)
            link = sub.links.get(path)
            if link is None or not link.explicit:
                return
            pattern = sub.config.pattern
            if pattern is not None and path != sub.config.wake_stream and glob_match(pattern, path):
                link.explicit, link.glob = False, True  # §6.4: the glob link remains
            else:
                del sub.links[path]
            await self._state.save(sub)

    @staticmethod
    def _check_alive(sub: Subscription) -> None:
        if sub.deleted:
            raise SubscriptionError(
                "SUBSCRIPTION_NOT_FOUND", f"subscription {sub.id!r} was deleted"
            )

    async def describe(self, sub: Subscription, stream_root: str) -> dict[str, Any]:
        """The §6.3 representation of ``sub``."""
        webhook: dict[str, Any] | None = None
        if sub.config.webhook_url is not None:
            webhook = {
                "url": sub.config.webhook_url,
                "signing": {
                    "alg": "ed25519",
                    "kid": self.keys.kid,
                    "jwks_url": f"{stream_root}__ds/jwks.json",
                },
            }
        streams = [
            {"path": p, "link_type": sub.links[p].link_type, "acked_offset": format_offset(a)}
            for p, a in sorted((p, link.acked) for p, link in sub.links.items())
        ]
        return {
            "id": sub.id,
            "subscription_id": sub.id,
            "type": sub.config.type,
            "pattern": sub.config.pattern,
            "streams": streams,
            "webhook": webhook,
            "wake_stream": sub.config.wake_stream,
            "lease_ttl_ms": sub.config.lease_ttl_ms,
            "created_at": sub.created_at,
            "status": sub.status,
            "description": sub.config.description,
        }

    # -- delivery API (§7) ------------------------------------------------------------------

    def _fence(self, sub: Subscription, claims: TokenClaims, kind: str, body: WakeRequest) -> None:
        """§7.3: token, token generation, request generation and wake_id must all be current."""
        self._check_alive(sub)
        if claims.kind != kind:
            raise SubscriptionError("TOKEN_INVALID", f"this endpoint needs a {kind} token")
        if (
            claims.incarnation != sub.incarnation
            or sub.wake_id is None
            or claims.generation != sub.generation
            or body.generation != sub.generation
            or body.wake_id != sub.wake_id
        ):
            raise SubscriptionError(
                "FENCED", "the wake is stale", status=409, generation=sub.generation
            )

    async def _apply_acks(self, sub: Subscription, acks: list[tuple[str, str]]) -> None:
        """Validate every ack first, then apply all of them (no partial cursor moves)."""
        moves: list[tuple[str, int]] = []
        for path, offset in acks:
            link = sub.links.get(path)
            if link is None:
                raise SubscriptionError(
                    "INVALID_OFFSET", f"stream {path!r} is not linked to this subscription"
                )
            position = parse_offset(offset)
            if position is None:
                raise SubscriptionError(
                    "INVALID_OFFSET", f"{offset!r} is not an offset", status=400
                )
            if position < link.acked:
                raise SubscriptionError("INVALID_OFFSET", "the ack moves the cursor backwards")
            info = await self._head(path)
            if position > (info.tail if info else 0):
                raise SubscriptionError("INVALID_OFFSET", "the ack is beyond the stream's tail")
            moves.append((path, position))
        for path, position in moves:
            sub.links[path].acked = position

    async def callback(self, sub_id: str, token: str, body: WakeRequest) -> dict[str, Any]:
        """Webhook callback (§7.1): acks, heartbeat, or done."""
        sub = self.get(sub_id)
        claims = self.keys.verify_token(token, sub_id)
        async with self._lock(sub_id):
            self._fence(sub, claims, "callback", body)
            if sub.config.type != "webhook":
                raise SubscriptionError("INVALID_REQUEST", "not a webhook subscription")
            return await self._ack_locked(sub, body)

    async def ack(self, sub_id: str, token: str, body: WakeRequest) -> dict[str, Any]:
        """Pull-wake ack (§7.2): heartbeat without ``done``, finish with it."""
        sub = self.get(sub_id)
        claims = self.keys.verify_token(token, sub_id)
        async with self._lock(sub_id):
            self._fence(sub, claims, "claim", body)
            return await self._ack_locked(sub, body)

    async def _ack_locked(self, sub: Subscription, body: WakeRequest) -> dict[str, Any]:
        await self._apply_acks(sub, body.acks)
        next_wake = False
        if body.done:
            self._finish_wake(sub)
            next_wake = await self._maybe_wake(sub)
            if not next_wake:
                await self._state.save(sub)
        else:
            sub.lease_deadline = time.time() + sub.config.lease_ttl_ms / 1000
            if sub.config.type == "webhook":  # a callback proves the receiver got the wake
                sub.status, sub.retry_count, sub.next_attempt_at = "active", 0, None
            await self._state.save(sub)
        self._schedule(sub)
        return {"ok": True, "next_wake": next_wake}

    async def release(self, sub_id: str, token: str, body: WakeRequest) -> None:
        """Give the lease back without acking (§7.2); pending work is woken again."""
        sub = self.get(sub_id)
        claims = self.keys.verify_token(token, sub_id)
        async with self._lock(sub_id):
            self._fence(sub, claims, "claim", body)
            self._finish_wake(sub)
            if not await self._maybe_wake(sub):
                await self._state.save(sub)
            self._schedule(sub)

    async def claim(self, sub_id: str, worker: str) -> dict[str, Any]:
        """Take the lease of a pull-wake subscription (§7.2)."""
        sub = self.get(sub_id)
        if sub.config.type != "pull-wake":
            raise SubscriptionError("INVALID_REQUEST", "only pull-wake subscriptions are claimed")
        async with self._lock(sub_id):
            self._check_alive(sub)
            if sub.holder is not None:
                raise SubscriptionError(
                    "ALREADY_CLAIMED",
                    f"worker {sub.holder!r} holds the lease",
                    current_holder=sub.holder,
                    generation=sub.generation,
                )
            tails = await self._tails(sub)
            if sub.wake_id is None:
                pending = [p for p, link in sorted(sub.links.items()) if tails[p] > link.acked]
                if not pending:
                    raise SubscriptionError("NO_PENDING_WORK", "no linked stream has new data")
                # The claimer is already here: no wake event needed for this generation.
                await self._start_wake(sub, tails, pending[0], announce=False)
            sub.holder = worker
            sub.lease_deadline = time.time() + sub.config.lease_ttl_ms / 1000
            await self._state.save(sub)
            self._schedule(sub)
            return {
                "wake_id": sub.wake_id,
                "generation": sub.generation,
                "token": self.keys.issue_token(sub.id, sub.incarnation, sub.generation, "claim"),
                "streams": self._stream_infos(sub, tails),
                "lease_ttl_ms": sub.config.lease_ttl_ms,
            }


def _sid(info: StreamInfo | None) -> int | None:
    return info.stream_id if info is not None else None


class WakeRequest:
    """The parsed body of a callback, ack or release request (§7.1, §7.2)."""

    __slots__ = ("acks", "done", "generation", "wake_id")

    def __init__(
        self, wake_id: str, generation: int, acks: list[tuple[str, str]], done: bool
    ) -> None:
        self.wake_id = wake_id
        self.generation = generation
        self.acks = acks
        self.done = done

    @classmethod
    def parse(cls, body: object) -> WakeRequest:
        if not isinstance(body, dict):
            raise SubscriptionError("INVALID_REQUEST", "the request body must be a JSON object")
        wake_id = body.get("wake_id")
        generation = body.get("generation")
        if not isinstance(wake_id, str) or not wake_id:
            raise SubscriptionError("INVALID_REQUEST", "wake_id must be a string")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise SubscriptionError("INVALID_REQUEST", "generation must be an integer")
        done = body.get("done", False)
        if not isinstance(done, bool):
            raise SubscriptionError("INVALID_REQUEST", "done must be true or false")
        raw_acks = body.get("acks")
        if raw_acks is None:
            raw_acks = []
        if not isinstance(raw_acks, list):
            raise SubscriptionError("INVALID_REQUEST", "acks must be an array")
        acks: list[tuple[str, str]] = []
        for item in raw_acks:
            if not isinstance(item, dict):
                raise SubscriptionError("INVALID_REQUEST", "each ack must be an object")
            stream = item.get("stream", item.get("path"))
            offset = item.get("offset")
            if not isinstance(offset, str):
                raise SubscriptionError("INVALID_REQUEST", "each ack needs a string offset")
            acks.append((parse_stream_path(stream, "acks[].stream"), offset))
        return cls(wake_id, generation, acks, done)
