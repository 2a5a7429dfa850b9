"""Identity for both front doors and every service: tokens with scopes, stored hashed.

A token is ``ms_<id>_<secret>``; the store keeps only a SHA-256 of the secret (and, for Kafka's
SASL/SCRAM, salted credentials derived from the token) under ``<id>`` in the key-value
namespace ``auth.tokens`` (``TOKENS_NAMESPACE``). ``TokenStore`` creates, lists, revokes and
verifies them through any ``millstream.log.Store``, so a CLI process and a running server
sharing one data directory see the same tokens at once.

Scopes (``read:chat/``, ``write:chat/``, ``admin:``, ``group:billing-``, ``llm:acme``,
``metrics:``) become ``Permissions``; a request acts as a ``Principal``. The node's
``Authenticator`` verifies and caches tokens for both doors, cuts live sessions of revoked
tokens, and keeps the limits (``AuthLimits``). Paths are compared in canonical form
(``canonical_path``). ``docs/security.md`` has the whole model.
"""

from ._authenticator import CONNECTION, LIVE_READER, Authenticator, Session
from ._errors import (
    AuthError,
    BadPath,
    InvalidScope,
    InvalidToken,
    LimitExceeded,
    RevokedToken,
    TokenNotFound,
)
from ._limits import AuthLimits, RateLimiter
from ._paths import canonical_path
from ._principal import ANONYMOUS, Principal
from ._scopes import AREAS, Permissions, parse_scope
from ._scram import (
    SCRAM_MECHANISMS,
    ScramCredential,
    ScramError,
    ScramServer,
    scram_credentials,
)
from ._tokens import TOKENS_NAMESPACE, NewToken, TokenRecord, TokenStore, parse_token

__all__ = [
    "ANONYMOUS",
    "AREAS",
    "CONNECTION",
    "LIVE_READER",
    "SCRAM_MECHANISMS",
    "TOKENS_NAMESPACE",
    "AuthError",
    "AuthLimits",
    "Authenticator",
    "BadPath",
    "InvalidScope",
    "InvalidToken",
    "LimitExceeded",
    "NewToken",
    "Permissions",
    "Principal",
    "RateLimiter",
    "RevokedToken",
    "ScramCredential",
    "ScramError",
    "ScramServer",
    "Session",
    "TokenNotFound",
    "TokenRecord",
    "TokenStore",
    "canonical_path",
    "parse_scope",
    "parse_token",
    "scram_credentials",
]
