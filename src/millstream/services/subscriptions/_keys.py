"""Key material: the Ed25519 webhook signing key (with its JWKS) and the HMAC token secret.

Webhook requests carry ``Webhook-Signature: t=<unix>,kid=<kid>,ed25519=<sig>``, an Ed25519
signature over ``<t>.<raw body>`` (PROTOCOL.md §7.1). The ``kid`` is ``ds_`` plus the RFC 7638
JWK thumbprint of the public key, so it is derived from key material and stable for the key's
life (§6.5). Callback and claim tokens are ``<payload>.<hmac>`` (both unpadded base64url), the
payload naming the subscription, its incarnation and the wake generation (§7.3, §12.9).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ._errors import SubscriptionError

__all__ = ["KeyRing", "TokenClaims", "b64url", "b64url_decode"]

TOKEN_LIFETIME_S = 3600  # tokens also die with their generation; this bounds a leaked one


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subscription_id: str
    incarnation: str
    generation: int
    kind: str  # "callback" (webhook) or "claim" (pull-wake)
    expires_at: int


class KeyRing:
    """One signing key pair and one HMAC secret; ``to_json``/``from_json`` persist them."""

    def __init__(self, signing_key: Ed25519PrivateKey, token_secret: bytes) -> None:
        self._signing_key = signing_key
        self._token_secret = token_secret
        raw_public = signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._x = b64url(raw_public)
        # RFC 7638 thumbprint: the required members in lexicographic order, no whitespace.
        thumbprint = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": self._x})
        self.kid = "ds_" + b64url(hashlib.sha256(thumbprint).digest())

    @classmethod
    def generate(cls) -> KeyRing:
        return cls(Ed25519PrivateKey.generate(), secrets.token_bytes(32))

    def to_json(self) -> dict[str, Any]:
        raw = self._signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {"ed25519_private": b64url(raw), "token_secret": b64url(self._token_secret)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        key = Ed25519PrivateKey.from_private_bytes(b64url_decode(data["ed25519_private"]))
        return cls(key, b64url_decode(data["token_secret"]))

    # -- webhook signatures (§6.5, §7.1) ---------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        key = {"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "use": "sig", "alg": "EdDSA"}
        return {"keys": [{**key, "x": self._x}]}

    def sign_webhook(self, body: bytes, now: float | None = None) -> str:
        """The ``Webhook-Signature`` header value for ``body``."""
        timestamp = int(time.time() if now is None else now)
        signature = self._signing_key.sign(str(timestamp).encode() + b"." + body)
        return f"t={timestamp},kid={self.kid},ed25519={b64url(signature)}"

    # -- callback / claim tokens (§7.3, §12.9) ---------------------------------------------

    def _mac(self, payload: str) -> str:
        return b64url(hmac.new(self._token_secret, payload.encode(), hashlib.sha256).digest())

    def issue_token(
        self, subscription_id: str, incarnation: str, generation: int, kind: str
    ) -> str:
        claims = {
            "sub": subscription_id,
            "inc": incarnation,
            "gen": generation,
            "kind": kind,
            "exp": int(time.time()) + TOKEN_LIFETIME_S,
            "jti": secrets.token_hex(6),
        }
        payload = b64url(orjson.dumps(claims))
        return f"{payload}.{self._mac(payload)}"

    def verify_token(self, token: str, subscription_id: str) -> TokenClaims:
        """Check the signature and expiry; raise ``TOKEN_INVALID``/``TOKEN_EXPIRED``."""
        invalid = SubscriptionError("TOKEN_INVALID", "the bearer token is not valid here")
        payload, dot, mac = token.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            raise invalid
        try:
            claims = orjson.loads(b64url_decode(payload))
            parsed = TokenClaims(
                subscription_id=str(claims["sub"]),
                incarnation=str(claims["inc"]),
                generation=int(claims["gen"]),
                kind=str(claims["kind"]),
                expires_at=int(claims["exp"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise invalid from exc
        if parsed.subscription_id != subscription_id:
            raise invalid
        if parsed.expires_at < time.time():
            raise SubscriptionError("TOKEN_EXPIRED", "the bearer token has expired")
        return parsed
