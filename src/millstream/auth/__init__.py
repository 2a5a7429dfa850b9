"""Identity for both front doors and every service: tokens with scopes, stored hashed.

A token is ``ms_<id>_<secret>``; the store keeps only a SHA-256 of the secret under ``<id>`` in
the key-value namespace ``auth.tokens`` (``TOKENS_NAMESPACE``). ``TokenStore`` creates, lists,
revokes and verifies them through any ``millstream.log.Store``, so a CLI process and a running
server sharing one data directory see the same tokens at once.
"""

from ._errors import AuthError, InvalidToken, RevokedToken, TokenNotFound
from ._tokens import TOKENS_NAMESPACE, NewToken, TokenRecord, TokenStore, parse_token

__all__ = [
    "TOKENS_NAMESPACE",
    "AuthError",
    "InvalidToken",
    "NewToken",
    "RevokedToken",
    "TokenNotFound",
    "TokenRecord",
    "TokenStore",
    "parse_token",
]
