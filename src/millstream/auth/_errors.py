"""Authentication errors.

AuthError            base
├── InvalidToken     malformed, unknown, or the secret does not match (401)
├── RevokedToken     the token was revoked (401)
└── TokenNotFound    no token with that id (for management commands)
"""

from __future__ import annotations

__all__ = ["AuthError", "InvalidToken", "RevokedToken", "TokenNotFound"]


class AuthError(Exception):
    """Base of the authentication errors."""


class InvalidToken(AuthError):
    """The presented token is malformed, unknown, or its secret does not match."""


class RevokedToken(AuthError):
    """The token exists but was revoked."""


class TokenNotFound(AuthError):
    """No token has this id."""
