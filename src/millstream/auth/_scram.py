"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server's half, sans-IO.

Kafka clients authenticate with SCRAM over SaslAuthenticate: the username is the token's name
(or id), the password the whole token. The store never holds the password: at token creation
``scram_credentials`` derives, per mechanism, a random salt, the iteration count, StoredKey
and ServerKey; a client proves it knows the password without sending it, and a recorded
exchange cannot be replayed, because every exchange signs a fresh server nonce.

The exchange, driven by the Kafka door::

    server = ScramServer("SCRAM-SHA-256")
    username = server.receive_first(client_first)      # ScramError on malformed input
    challenge = server.challenge(credential_or_None)   # unknown users get a decoy salt
    reply = server.receive_final(client_final)         # ScramError: invalid proof
    # success: reply is the server-final message (v=<signature>)

Channel binding is not offered (``n,,`` GS2 header); an authorization identity other than the
user (``a=``) and Kafka's delegation-token extension (``tokenauth``) are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SCRAM_ITERATIONS",
    "SCRAM_MECHANISMS",
    "ScramCredential",
    "ScramError",
    "ScramServer",
    "scram_credentials",
]

#: Kafka's minimum (and default) for SCRAM credentials.
SCRAM_ITERATIONS = 4096
_HASHES: dict[str, Callable[..., Any]] = {
    "SCRAM-SHA-256": hashlib.sha256,
    "SCRAM-SHA-512": hashlib.sha512,
}
SCRAM_MECHANISMS = tuple(_HASHES)


class ScramError(Exception):
    """The exchange failed (malformed message, unknown user, wrong proof)."""


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the store keeps for one mechanism: enough to verify, not to impersonate."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "salt": _b64(self.salt),
            "iterations": self.iterations,
            "stored_key": _b64(self.stored_key),
            "server_key": _b64(self.server_key),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScramCredential:
        return cls(
            salt=base64.b64decode(data["salt"]),
            iterations=int(data["iterations"]),
            stored_key=base64.b64decode(data["stored_key"]),
            server_key=base64.b64decode(data["server_key"]),
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hmac(hash_name: Callable[..., Any], key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def scram_credentials(
    mechanism: str, password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> ScramCredential:
    """Derive the stored credential of ``password`` for ``mechanism``."""
    hash_name = _HASHES[mechanism]
    salt = salt if salt is not None else secrets.token_bytes(24)
    salted = hashlib.pbkdf2_hmac(hash_name().name, password.encode("utf-8"), salt, iterations)
    client_key = _hmac(hash_name, salted, b"Client Key")
    return ScramCredential(
        salt=salt,
        iterations=iterations,
        stored_key=hash_name(client_key).digest(),
        server_key=_hmac(hash_name, salted, b"Server Key"),
    )


def _attributes(message: str) -> list[tuple[str, str]]:
    pairs = []
    for part in message.split(","):
        key, eq, value = part.partition("=")
        if not eq or len(key) != 1:
            raise ScramError(f"malformed SCRAM attribute {part!r}")
        pairs.append((key, value))
    return pairs


def _saslname(value: str) -> str:
    if "=" in value.replace("=2C", "").replace("=3D", ""):
        raise ScramError("malformed username escape")
    return value.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """One SCRAM exchange (see the module docstring); not reusable."""

    def __init__(self, mechanism: str) -> None:
        if mechanism not in _HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._hash = _HASHES[mechanism]
        self._gs2 = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._credential: ScramCredential | None = None
        self._decoy = False
        self.username = ""

    def receive_first(self, data: bytes) -> str:
        """Parse the client-first message; the username it names."""
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScramError("the client-first message is not UTF-8") from exc
        flag, comma, rest = message.partition(",")
        authzid, comma2, bare = rest.partition(",")
        if not (comma and comma2):
            raise ScramError("malformed client-first message")
        if flag not in ("n", "y"):
            raise ScramError("channel binding is not supported (send the 'n' GS2 flag)")
        attributes = _attributes(bare)
        if len(attributes) < 2 or attributes[0][0] != "n" or attributes[1][0] != "r":
            raise ScramError("the client-first message needs n=<user>,r=<nonce>")
        if any(key == "m" for key, _ in attributes) or len(attributes) > 2:
            raise ScramError("SCRAM extensions (such as tokenauth) are not supported")
        username = _saslname(attributes[0][1])
        nonce = attributes[1][1]
        if not username or not nonce or not nonce.isprintable() or "," in nonce:
            raise ScramError("empty username or nonce")
        if authzid and _saslname(authzid.removeprefix("a=")) != username:
            raise ScramError("an authorization identity other than the user is not supported")
        self._gs2 = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._nonce = nonce + secrets.token_urlsafe(24)
        self.username = username
        return username

    def challenge(self, credential: ScramCredential | None) -> bytes:
        """The server-first message. ``None`` (no such user, or no SCRAM credential) answers
        with a decoy salt, so the exchange fails at the proof like a wrong password does."""
        if not self._nonce:
            raise ScramError("the client-first message has not been received")
        if credential is None:
            self._decoy = True
            credential = ScramCredential(
                salt=hashlib.sha256(b"decoy:" + self.username.encode()).digest()[:24],
                iterations=SCRAM_ITERATIONS,
                stored_key=secrets.token_bytes(self._hash().digest_size),
                server_key=b"",
            )
        self._credential = credential
        salt = _b64(credential.salt)
        self._server_first = f"r={self._nonce},s={salt},i={credential.iterations}"
        return self._server_first.encode()

    def receive_final(self, data: bytes) -> bytes:
        """Check the client-final message; the server-final message when the proof holds."""
        credential = self._credential
        if credential is None:
            raise ScramError("the exchange has not reached its final message")
        self._credential = None  # one attempt per exchange
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScramError("the client-final message is not UTF-8") from exc
        without_proof, _, proof_part = message.rpartition(",p=")
        attributes = dict(_attributes(without_proof))
        if attributes.get("r") != self._nonce:
            raise ScramError("the nonce does not match this exchange (a replayed message?)")
        expected_binding = base64.b64encode(self._gs2.encode()).decode("ascii")
        if attributes.get("c") != expected_binding:
            raise ScramError("the channel binding does not match the client-first message")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError as exc:
            raise ScramError("the proof is not base64") from exc
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(self._hash, credential.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("invalid proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if self._decoy or not hmac.compare_digest(
            self._hash(client_key).digest(), credential.stored_key
        ):
            raise ScramError("invalid proof")
        server_signature = _hmac(self._hash, credential.server_key, auth_message)
        return f"v={_b64(server_signature)}".encode()
