"""The node's authenticator: verified tokens cached, live sessions cut on revocation, limits.

Both doors and the services ask one ``Authenticator``:

- **Verification** (``authenticate``) reads the token's record once and caches its
  ``Principal``; ``cached`` answers from memory without awaiting (the HTTP fast path declines a
  request whose token is not cached, and the ASGI route verifies it).
- **Revocation.** A background task (``start``) re-reads every token in use each
  ``recheck_interval`` seconds, also ones revoked by another process on the same data
  directory (``millstream tokens revoke``). A revoked or deleted token leaves the cache and its
  live sessions are cut: SSE and long-poll readers end, Kafka connections close. While the task
  runs, cache entries are trusted as they are (the hot path reads no clock); without it, for
  three intervals. Entries unused for a minute are dropped.
- **Limits** (``AuthLimits``): per-token request rate, live sessions per token by kind, Kafka
  byte quotas, and failed authentications per client address (a client over that limit is
  refused every authentication, valid or not, until it slows down, so a guess cannot be
  confirmed by a different answer).
- **Counting.** ``failures`` counts refusals by ``(door, reason)`` for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from millstream.log import LogError, Store

from ._errors import AuthError, InvalidToken, LimitExceeded, RevokedToken
from ._limits import AuthLimits, RateLimiter
from ._principal import Principal
from ._scram import ScramCredential
from ._tokens import TOKENS_NAMESPACE, TokenRecord, TokenStore

__all__ = ["CONNECTION", "LIVE_READER", "Authenticator", "Session"]

logger = logging.getLogger("millstream.auth")

#: Session kinds: what ``AuthLimits.max_live_readers`` and ``max_connections`` count.
LIVE_READER = "live_reader"
CONNECTION = "connection"
_IDLE_PASSES = 60  # recheck passes a cached token may go unused before it is dropped
_CACHE_SIZE = 100_000


@dataclass(slots=True)
class _Entry:
    principal: Principal
    checked: float
    idle: int = 0


@dataclass(eq=False, slots=True)
class Session:
    """Something live that acts as a token (an SSE reader, a Kafka connection); ``cut`` is
    called once if the token is revoked. ``close`` it when it ends."""

    authenticator: Authenticator
    principal: Principal
    kind: str
    cut: Callable[[], None]
    revoked: bool = False
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.authenticator._forget(self)


class Authenticator:
    """See the module docstring. ``required``: requests without a token are refused (else
    they act as ``ANONYMOUS``; a token that is sent is still verified and its scopes apply)."""

    def __init__(
        self,
        store: Store,
        *,
        required: bool = False,
        limits: AuthLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.tokens = TokenStore(store)
        self.required = required
        self.limits = limits = limits or AuthLimits()
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._by_id: dict[str, set[str]] = {}
        self._sessions: dict[str, set[Session]] = {}
        self._stale = 3 * limits.recheck_interval
        self._requests = (
            RateLimiter(limits.request_rate, limits.request_burst, clock)
            if limits.request_rate
            else None
        )
        self._failures = (
            RateLimiter(limits.failure_rate, limits.failure_burst, clock)
            if limits.failure_rate
            else None
        )
        self._produce = (
            RateLimiter(limits.produce_byte_rate, limits.produce_byte_rate, clock)
            if limits.produce_byte_rate
            else None
        )
        self._fetch = (
            RateLimiter(limits.fetch_byte_rate, limits.fetch_byte_rate, clock)
            if limits.fetch_byte_rate
            else None
        )
        #: refusals by (door, reason), for metrics
        self.failures: Counter[tuple[str, str]] = Counter()
        #: whether any client address is being watched for failures (hot paths skip the check)
        self.guards_clients = False
        #: whether tokens have a request rate (hot paths skip ``take_request``)
        self.limits_requests = self._requests is not None
        self._task: asyncio.Task[None] | None = None

    # -- verifying ---------------------------------------------------------------------------

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified lately, without awaiting; ``None``: verify it.
        While the recheck task runs it drops revoked tokens, so an entry is trusted as is;
        without it (or if it died) an entry is trusted for three recheck intervals."""
        entry = self._cache.get(token)
        if entry is None:
            return None
        task = self._task
        if (task is None or task.done()) and self._clock() - entry.checked > self._stale:
            return None
        entry.idle = 0
        return entry.principal

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid, unrevoked token; ``InvalidToken``/``RevokedToken``."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        record = await self.tokens.verify(token)
        return self._remember(token, record)

    async def authenticate_password(self, username: str, password: str) -> Principal:
        """SASL/PLAIN: the password is the token, the username its name (or id)."""
        principal = await self.authenticate(password)
        if username not in (principal.name, principal.id):
            raise InvalidToken("the username is not this token's name or id")
        return principal

    async def scram_lookup(
        self, username: str, mechanism: str
    ) -> tuple[TokenRecord | None, ScramCredential | None]:
        """The token a SCRAM username names and its credential (``None``s: no such token)."""
        record = await self.tokens.find(username)
        if record is None:
            return None, None
        return record, record.scram_credential(mechanism)

    def principal(self, record: TokenRecord) -> Principal:
        """The principal of a record verified by other means (SCRAM); watched like the rest."""
        return Principal.of(record)

    def _remember(self, token: str, record: TokenRecord) -> Principal:
        principal = Principal.of(record)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
            self._by_id.clear()
        self._cache[token] = _Entry(principal, self._clock())
        self._by_id.setdefault(record.id, set()).add(token)
        return principal

    # -- failures and rates ------------------------------------------------------------------

    def refused(self, door: str, error: AuthError, client: str | None) -> None:
        """Count a refusal; a failed authentication also drains ``client``'s allowance."""
        self.failures[(door, error.reason)] += 1
        if client and self._failures is not None and isinstance(error, InvalidToken | RevokedToken):
            self._failures.take(client)
            self.guards_clients = True

    def check_client(self, client: str | None) -> None:
        """``LimitExceeded`` while ``client`` has failed authentication too often."""
        if client is None or self._failures is None:
            return
        wait = self._failures.wait_time(client)
        if wait > 0:
            raise LimitExceeded(
                "too many failed authentications from this address",
                retry_after=wait,
                reason="auth_rate_limited",
            )

    def take_request(self, principal: Principal) -> float:
        """One request of ``principal`` against its rate: ``0.0`` or seconds to wait."""
        limiter = self._requests
        if limiter is None or principal.anonymous:
            return 0.0
        return limiter.take(principal.id)

    def charge_bytes(self, principal: Principal, produced: int, fetched: int) -> float:
        """Kafka quotas: seconds the client should wait after this much traffic."""
        if principal.anonymous:
            return 0.0
        wait = 0.0
        if produced and self._produce is not None:
            wait = self._produce.charge(principal.id, produced)
        if fetched and self._fetch is not None:
            wait = max(wait, self._fetch.charge(principal.id, fetched))
        return wait

    @property
    def has_quotas(self) -> bool:
        return self._produce is not None or self._fetch is not None

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, principal: Principal, kind: str, cut: Callable[[], None]) -> Session:
        """Register something live acting as ``principal``; ``LimitExceeded`` over the cap."""
        session = Session(self, principal, kind, cut)
        if principal.anonymous:
            return session
        cap = self.limits.max_live_readers if kind == LIVE_READER else self.limits.max_connections
        sessions = self._sessions.setdefault(principal.id, set())
        if cap and sum(1 for s in sessions if s.kind == kind) >= cap:
            what = "live readers" if kind == LIVE_READER else "connections"
            raise LimitExceeded(
                f"token {principal.name!r} has {cap} {what} open (the most allowed)",
                retry_after=1.0,
                reason=f"too_many_{kind}s",
            )
        sessions.add(session)
        return session

    def sessions(self, token_id: str) -> int:
        return len(self._sessions.get(token_id, ()))

    def _forget(self, session: Session) -> None:
        sessions = self._sessions.get(session.principal.id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.principal.id]

    def revoked(self, token_id: str) -> None:
        """Forget ``token_id`` and cut its sessions (the recheck found it revoked)."""
        for token in self._by_id.pop(token_id, ()):
            self._cache.pop(token, None)
        for session in list(self._sessions.pop(token_id, ())):
            session.revoked = True
            session.closed = True
            try:
                session.cut()
            except Exception:
                logger.exception("cutting a session of revoked token %s failed", token_id)
        logger.info("token %s is revoked: dropped from the cache, live sessions cut", token_id)

    # -- the recheck task --------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._recheck_forever())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.recheck_interval)
            try:
                await self.recheck()
            except LogError as exc:
                logger.warning("cannot recheck tokens: %s", exc)
            except Exception:  # never die: the cache is trusted while this runs
                logger.exception("rechecking tokens failed")

    async def recheck(self) -> None:
        """One pass: re-read every token in use; cut revoked ones; drop idle cache entries."""
        now = self._clock()
        if self._failures is not None:
            self._failures.prune()
            self.guards_clients = len(self._failures) > 0
        for token_id in set(self._by_id) | set(self._sessions):
            item = await self.store.kv_get(TOKENS_NAMESPACE, token_id)
            record = None if item is None else TokenRecord.from_json(token_id, item.value)
            if record is None or record.revoked is not None:
                self.revoked(token_id)
                continue
            for token in list(self._by_id.get(token_id, ())):
                entry = self._cache.get(token)
                if entry is None:
                    continue
                entry.idle += 1
                if entry.idle > _IDLE_PASSES and token_id not in self._sessions:
                    del self._cache[token]
                    self._by_id[token_id].discard(token)
                    continue
                entry.checked = now
                if entry.principal.meta != record.meta:
                    entry.principal = Principal.of(record)
            if not self._by_id.get(token_id, True):
                del self._by_id[token_id]
