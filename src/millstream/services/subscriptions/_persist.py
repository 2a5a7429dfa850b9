"""Subscription state kept durable in the log itself, under the reserved ``__ds/`` namespace.

Why the log and not new tables: every store (memory, SQLite, later PostgreSQL) already makes an
append durable before it returns, and clients can never create or read streams whose first
segment is ``__ds`` (the HTTP app routes that prefix to the subscription handler). So state
survives restarts exactly as well as data does, with no second storage engine to keep in step.

Layout:

- ``__ds/keys/webhook``: one JSON message holding the Ed25519 signing key and the HMAC token
  secret, written once at first start.
- ``__ds/subscriptions/<quoted id>/<epoch>``: JSON snapshots of one subscription, the last one
  wins. After ``COMPACT_AFTER`` snapshots the next is written as the *initial message* of a new
  stream ``<epoch + 1>`` (create-with-body is atomic) and the old stream is deleted; recovery
  picks the highest epoch and removes any lower one a crash left behind.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from urllib.parse import quote, unquote

import orjson

from millstream.log import (
    AppendRequest,
    CreateRequest,
    KvConflict,
    KvWrite,
    StreamConfig,
    StreamGone,
    StreamNotFound,
)
from millstream.log import Store as LogStore

from ._errors import SubscriptionError
from ._keys import KeyRing
from ._state import Subscription

__all__ = ["COMPACT_AFTER", "KEYS_PATH", "STATE_PREFIX", "StateStore"]

log = logging.getLogger("millstream.subscriptions")

KEYS_PATH = "__ds/keys/webhook"
STATE_PREFIX = "__ds/subscriptions/"
COMPACT_AFTER = 256  # snapshots per state stream before rolling to a fresh one
_JSON = StreamConfig(content_type="application/json")


def _state_path(subscription_id: str, epoch: int) -> str:
    return f"{STATE_PREFIX}{quote(subscription_id, safe='')}/{epoch:010d}"


class StateStore:
    """Reads and writes subscription snapshots and key material through a ``Store``."""

    def __init__(self, store: LogStore, fence: Callable[[], KvWrite] | None = None) -> None:
        self._store = store
        self._fence = fence
        self._epochs: dict[str, int] = {}  # subscription id -> current epoch

    def _guard(self) -> list[KvWrite]:
        return [] if self._fence is None else [self._fence()]

    async def _check_fence(self) -> None:
        """Before a create (which carries no key-value writes): refuse if deposed."""
        if self._fence is not None:
            await self._store.kv_write([self._fence()])

    async def _last_message(self, path: str) -> bytes | None:
        try:
            info = await self._store.head(path)
            if info.tail == 0:
                return None
            result = await self._store.read(path, info.tail - 1)
        except (StreamNotFound, StreamGone):
            return None
        return result.payloads[0] if result.payloads else None

    async def load_keys(self) -> KeyRing:
        """The persisted key ring, generating and storing one on first start."""
        raw = await self._last_message(KEYS_PATH)
        if raw is None:
            keys = KeyRing.generate()
            message = orjson.dumps(keys.to_json())
            result = await self._store.create(KEYS_PATH, CreateRequest(_JSON, [message]))
            if result.created:
                return keys
            raw = await self._last_message(KEYS_PATH)
            if raw is None:  # an empty keys stream: repair it
                await self._store.append(KEYS_PATH, AppendRequest([message]))
                return keys
        return KeyRing.from_json(orjson.loads(raw))

    async def load_all(self) -> list[Subscription]:
        """Every persisted subscription, from the newest state stream of each id."""
        newest: dict[str, tuple[int, str]] = {}
        stale: list[str] = []
        for path in await self._store.list_paths(STATE_PREFIX, include_internal=True):
            quoted, _, epoch_text = path[len(STATE_PREFIX) :].partition("/")
            if not epoch_text.isdigit():
                continue
            sub_id, epoch = unquote(quoted), int(epoch_text)
            previous = newest.get(sub_id)
            if previous is None or epoch > previous[0]:
                if previous is not None:
                    stale.append(previous[1])
                newest[sub_id] = (epoch, path)
            else:
                stale.append(path)
        subscriptions: list[Subscription] = []
        for sub_id, (epoch, path) in sorted(newest.items()):
            raw = await self._last_message(path)
            if raw is None:
                continue
            try:
                subscriptions.append(Subscription.from_json(orjson.loads(raw)))
            except (ValueError, KeyError, TypeError):
                log.exception("unreadable subscription state at %s; skipped", path)
                continue
            self._epochs[sub_id] = epoch
        for path in stale:
            await self._delete_quietly(path)
        return subscriptions

    async def save(self, sub: Subscription) -> None:
        """Durably record ``sub``'s current state (the HTTP answer waits for this).

        With a fence, a deposed node's save raises ``SubscriptionError`` 503 and writes
        nothing (appends commit the fence with the state; a create checks it first)."""
        try:
            await self._save(sub)
        except KvConflict as exc:
            raise SubscriptionError(
                "UNAVAILABLE", "subscriptions moved to another node; retry", status=503
            ) from exc

    async def _save(self, sub: Subscription) -> None:
        message = orjson.dumps(sub.to_json())
        epoch = self._epochs.get(sub.id)
        append = AppendRequest([message], kv=self._guard())
        if epoch is None:
            path = _state_path(sub.id, 0)
            await self._check_fence()
            result = await self._store.create(path, CreateRequest(_JSON, [message]))
            self._epochs[sub.id] = 0
            if not result.created:  # left over from a crash mid-delete: continue on it
                await self._store.append(path, append)
            return
        path = _state_path(sub.id, epoch)
        try:
            result_tail = (await self._store.append(path, append)).tail
        except (StreamNotFound, StreamGone):
            await self._check_fence()
            await self._store.create(path, CreateRequest(_JSON, [message]))
            return
        if result_tail >= COMPACT_AFTER:
            await self._store.create(
                _state_path(sub.id, epoch + 1), CreateRequest(_JSON, [message])
            )
            self._epochs[sub.id] = epoch + 1
            await self._delete_quietly(path)

    async def delete(self, subscription_id: str) -> None:
        """Remove every state stream of ``subscription_id``."""
        self._epochs.pop(subscription_id, None)
        prefix = f"{STATE_PREFIX}{quote(subscription_id, safe='')}/"
        for path in sorted(
            await self._store.list_paths(prefix, include_internal=True), reverse=True
        ):
            await self._delete_quietly(path)

    async def _delete_quietly(self, path: str) -> None:
        with contextlib.suppress(StreamNotFound, StreamGone):
            await self._store.delete(path)
