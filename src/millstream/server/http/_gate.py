"""Who may do what over HTTP: the door's half of ``millstream.auth``.

Every stream request passes the gate before it touches the store. The token comes from
``Authorization: Bearer <token>``. On a node that requires tokens, a request without a valid
one is refused; on an open node a valid token's scopes and limits apply, and anything else (no
token, another service's credentials, an invalid token) acts as ``ANONYMOUS``, which may do
everything. The method decides the action (GET/HEAD read, POST and PUT write, DELETE admin; a
fork also reads its source) and the token's scopes must cover the path, which
must be canonical (``auth.canonical_path``). Refusals are answered with a JSON error and
counted (``Authenticator.failures``) and logged with the request id:

- ``401 unauthorized``: no token where one is required, a malformed, unknown or revoked token
  (``WWW-Authenticate: Bearer``);
- ``403 forbidden``: the token's scopes do not cover the path for that action;
- ``400 bad_path``: a path that is not canonical (only for requests with a token);
- ``429 rate_limited``: the token's request rate, its live readers, or too many failed
  authentications from the client's address (``Retry-After``).

``admit_now`` is the fast path's version: it answers from memory or declines (``None``), and
the ASGI route then gives the full answer, so refusals are only ever written in one place.
Live readers (SSE, long-poll) of a token are sessions: capped per token, and cut when the token
is revoked (an SSE response ends, a long-poll answers 401).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from millstream.auth import (
    ANONYMOUS,
    LIVE_READER,
    Authenticator,
    AuthError,
    BadPath,
    InvalidToken,
    LimitExceeded,
    Principal,
    RevokedToken,
    canonical_path,
)

from ._errors import HttpError
from ._headers import RequestHeaders
from ._responses import Answer

__all__ = ["HttpGate", "request_id"]

logger = logging.getLogger("millstream.server.http")

_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "write", "PUT": "write", "DELETE": "admin"}
_VERBS = {"read": "read", "write": "write to", "admin": "delete"}
_TOKEN_MEMO = 10_000
_TOKEN_PREFIX = "ms_"
_REQUEST_ID = re.compile(rb"\A[A-Za-z0-9._:/+=-]{1,128}\Z")
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="millstream"')]
_INVALID = [(b"www-authenticate", b'Bearer realm="millstream", error="invalid_token"')]


def request_id(headers: RequestHeaders) -> str:
    """The client's ``X-Request-Id`` when it is a sane token, else a fresh one."""
    given = headers.get(b"x-request-id")
    if given is not None and _REQUEST_ID.match(given):
        return given.decode("ascii")
    return os.urandom(8).hex()


def _bearer(value: bytes) -> str | None:
    scheme, _, token = value.partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    try:
        return token.decode("ascii") if token else None
    except UnicodeDecodeError:
        return None


class HttpGate:
    """See the module docstring."""

    door = "http"

    def __init__(self, authenticator: Authenticator) -> None:
        self.auth = authenticator
        #: ``Authorization`` header values already parsed, to their token (no auth state)
        self._tokens: dict[bytes, str] = {}

    # -- the fast path -----------------------------------------------------------------------

    def admit_now(
        self,
        method: str,
        stream: str,
        headers: RequestHeaders,
        client: str | None,
        also_reads: str | None = None,
    ) -> Principal | None:
        """The principal when everything can be decided from memory and says yes; ``None``
        otherwise (the ASGI route decides and answers). The fast path's only auth cost, so it
        is written flat: a header lookup, two dict lookups, a prefix check."""
        auth = self.auth
        raw = headers.get(b"authorization")
        if raw is None:
            return None if auth.required else ANONYMOUS
        token = self._tokens.get(raw)
        if token is None:
            token = _bearer(raw) or ""
            if len(self._tokens) >= _TOKEN_MEMO:
                self._tokens.clear()
            self._tokens[raw] = token
        if not auth.required and not token.startswith(_TOKEN_PREFIX):
            return ANONYMOUS  # an open node ignores credentials that are not its tokens
        if auth.guards_clients:
            try:
                auth.check_client(client)
            except LimitExceeded:
                return None
        principal = auth.cached(token)
        if principal is None or (auth.limits_requests and auth.take_request(principal)):
            return None
        permissions = principal.permissions
        if method == "POST" or method == "PUT":
            prefixes = permissions.write
        elif method == "GET" or method == "HEAD":
            prefixes = permissions.read
        else:
            return None
        if not stream.startswith(prefixes):
            return None
        if also_reads is not None and not also_reads.startswith(permissions.read):
            return None
        if "." in stream or not stream.isascii():  # else canonical already (locate checked)
            try:
                canonical_path(stream)
            except BadPath:
                return None
        return principal

    # -- the ASGI route ----------------------------------------------------------------------

    async def authenticate(
        self, headers: RequestHeaders, client: str | None, what: str
    ) -> Principal:
        """The request's principal; ``HttpError`` 401/429 (counted and logged) otherwise."""
        auth = self.auth
        raw = headers.get(b"authorization")
        if raw is None:
            if not auth.required:
                return ANONYMOUS
            missing = InvalidToken("this server requires a token (Authorization: Bearer <token>)")
            missing.reason = "missing_token"
            raise self._refuse(missing, headers, client, what, missing=True)
        token = _bearer(raw)
        if not auth.required and not (token or "").startswith(_TOKEN_PREFIX):
            return ANONYMOUS  # an open node ignores credentials that are not its tokens
        try:
            auth.check_client(client)
            if token is None:
                raise InvalidToken("the Authorization header is not 'Bearer <token>'")
            try:
                principal = await auth.authenticate(token)
            except (InvalidToken, RevokedToken):
                if not auth.required:
                    return ANONYMOUS  # open: a bad token is no worse than none
                raise
            wait = auth.take_request(principal)
            if wait:
                raise LimitExceeded(
                    f"token {principal.name!r} is over its request rate", retry_after=wait
                )
        except AuthError as exc:
            raise self._refuse(exc, headers, client, what) from None
        return principal

    async def require_admin(
        self, headers: RequestHeaders, client: str | None, what: str
    ) -> Principal:
        """The request's principal if it has ``admin:``; ``HttpError`` 401/403/429 otherwise
        (service routes that check no scopes of their own)."""
        principal = await self.authenticate(headers, client, what)
        if not principal.permissions.everything:
            message = f"token {principal.name!r} needs the admin: scope for {what}"
            raise self.forbidden(principal, message, headers, client, what)
        return principal

    def authorize(
        self,
        principal: Principal,
        method: str,
        stream: str,
        headers: RequestHeaders,
        client: str | None,
    ) -> None:
        """``HttpError`` 403 (or 400 for a non-canonical path) unless ``principal`` may
        ``method`` the stream."""
        action = _ACTIONS.get(method, "admin")
        self.check(principal, action, stream, headers, client, f"{method} {stream}")

    def check(
        self,
        principal: Principal,
        action: str,
        path: str,
        headers: RequestHeaders,
        client: str | None,
        what: str,
    ) -> None:
        if principal is ANONYMOUS:
            return
        try:
            canonical_path(path)
        except BadPath as exc:
            raise self._refuse(exc, headers, client, what, principal) from None
        if not principal.permissions.can(action, path):
            message = f"token {principal.name!r} may not {_VERBS.get(action, action)} {path!r}"
            raise self.forbidden(principal, message, headers, client, what)

    def forbidden(
        self,
        principal: Principal,
        message: str,
        headers: RequestHeaders,
        client: str | None,
        what: str,
    ) -> HttpError:
        """A 403 for ``principal`` (counted and logged), to raise."""
        denied = AuthError(
            message, hint="ask for a token whose scopes cover this (docs/security.md)"
        )
        denied.reason = "forbidden"
        return self._refuse(denied, headers, client, what, principal)

    def _refuse(
        self,
        error: AuthError,
        headers: RequestHeaders,
        client: str | None,
        what: str,
        principal: Principal | None = None,
        *,
        missing: bool = False,
    ) -> HttpError:
        self.auth.refused(self.door, error, client)
        rid = request_id(headers)
        logger.warning(
            "refused %s: %s (%s)",
            what,
            error.message,
            error.reason,
            extra={
                "request_id": rid,
                "client": client,
                "principal": None if principal is None else str(principal),
                "reason": error.reason,
                "door": self.door,
            },
        )
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", rid.encode())]
        if isinstance(error, LimitExceeded):
            retry = str(max(1, math.ceil(error.retry_after))).encode()
            return HttpError(429, error.reason, error.message, [(b"retry-after", retry), *extra])
        if isinstance(error, BadPath):
            return HttpError(400, "bad_path", error.message, extra)
        if isinstance(error, InvalidToken | RevokedToken):
            challenge = _CHALLENGE if missing else _INVALID
            code = "token_revoked" if isinstance(error, RevokedToken) else "unauthorized"
            return HttpError(401, code, error.message, [*challenge, *extra])
        return HttpError(403, "forbidden", error.message, extra)

    # -- live readers ------------------------------------------------------------------------

    async def live_answer(
        self,
        principal: Principal,
        run: Callable[[], Coroutine[Any, Any, Answer]],
        headers: RequestHeaders,
        client: str | None,
    ) -> Answer:
        """Run a long-poll as a session of ``principal``: 401 if the token is revoked while
        it waits; 429 over the token's live-reader cap."""
        cut: Answer | None = await self._run_session(principal, run, headers, client)
        if cut is None:
            raise self._refuse(
                RevokedToken("the token was revoked while this request waited"),
                headers,
                client,
                "long-poll",
                principal,
            )
        return cut

    async def live_stream(
        self,
        principal: Principal,
        run: Callable[[], Awaitable[None]],
        headers: RequestHeaders,
        client: str | None,
        end: Callable[[], Awaitable[None]],
    ) -> None:
        """Run an SSE response as a session of ``principal``; when the token is revoked the
        response ends (``end``) and the client's reconnection gets 401."""
        done = await self._run_session(principal, run, headers, client, cut_value=False)
        if done is False:
            await end()

    async def _run_session(
        self,
        principal: Principal,
        run: Callable[[], Awaitable[Any]],
        headers: RequestHeaders,
        client: str | None,
        cut_value: Any = None,
    ) -> Any:
        if principal is ANONYMOUS:
            return await run()
        running: list[asyncio.Task[Any]] = []

        def cut() -> None:
            if running:
                running[0].cancel()

        try:
            session = self.auth.open_session(principal, LIVE_READER, cut)
        except LimitExceeded as exc:
            raise self._refuse(exc, headers, client, "live read", principal) from None
        task: asyncio.Task[Any] = asyncio.ensure_future(run())
        running.append(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if session.revoked and task.cancelled():
                return cut_value
            task.cancel()
            raise
        finally:
            session.close()
