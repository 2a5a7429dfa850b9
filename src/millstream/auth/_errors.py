"""Authentication and authorization errors.

AuthError                 base; ``reason`` is a short label for logs and metrics
├── InvalidToken          malformed, unknown, or the secret does not match (HTTP 401)
├── RevokedToken          the token was revoked (HTTP 401)
├── TokenNotFound         no token with that id (management commands)
├── InvalidScope          a scope string that means nothing (``tokens create``)
├── BadPath               a path that is not in canonical form: ``.``/``..`` segments, Unicode
│                         that NFKC changes, invisible format characters (HTTP 400)
└── LimitExceeded         a rate limit or a cap (HTTP 429; ``retry_after`` seconds)
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BadPath",
    "InvalidScope",
    "InvalidToken",
    "LimitExceeded",
    "RevokedToken",
    "TokenNotFound",
]


class AuthError(Exception):
    """Base of the authentication errors; ``hint`` says what to do about it."""

    reason = "auth_error"
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint


class InvalidToken(AuthError):
    """The presented token is malformed, unknown, or its secret does not match."""

    reason = "invalid_token"
    hint = "create a token with `millstream tokens create` and send it as Authorization: Bearer"


class RevokedToken(AuthError):
    """The token exists but was revoked."""

    reason = "revoked_token"
    hint = "the token was revoked: create a new one with `millstream tokens create`"


class TokenNotFound(AuthError):
    """No token has this id."""

    reason = "token_not_found"


class InvalidScope(AuthError, ValueError):
    """A scope string that is not ``<area>:<target>`` with a known area and a clean target."""

    reason = "invalid_scope"
    hint = "scopes are read:PREFIX, write:PREFIX, admin:PREFIX, group:PREFIX, llm:PROJECT, metrics:"


class BadPath(AuthError, ValueError):
    """A stream or topic path that two readers could understand differently."""

    reason = "bad_path"
    hint = "use the path's plain form: no '.' or '..' segments, NFKC-normal Unicode"


class LimitExceeded(AuthError):
    """A rate limit or a cap was hit; retry after ``retry_after`` seconds."""

    reason = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, reason: str | None = None) -> None:
        super().__init__(message, hint=f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after
        if reason is not None:
            self.reason = reason
