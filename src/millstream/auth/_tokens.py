"""Token records in the store's key-value table: create, list, revoke, verify.

Why SHA-256 and not a slow password hash: a secret is 32 random bytes (256 bits), so guessing
is hopeless whatever the hash costs, and verification runs on every request. The comparison is
constant-time (``hmac.compare_digest``). Scopes are strings ``<area>:<target>`` checked by
``parse_scope`` (``read:chat/``, ``llm:acme``; ``_scopes`` lists them).

For Kafka's SASL/SCRAM a record also keeps, per mechanism, the salted credential derived from
the whole token at creation (``_scram``): never the token. Tokens created before SCRAM existed
have none and authenticate over SASL/PLAIN and HTTP only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from millstream.log import KvConflict, KvWrite, Store

from ._errors import InvalidScope, InvalidToken, RevokedToken, TokenNotFound
from ._scopes import parse_scope
from ._scram import SCRAM_MECHANISMS, ScramCredential, scram_credentials

__all__ = ["TOKENS_NAMESPACE", "NewToken", "TokenRecord", "TokenStore", "parse_token"]

TOKENS_NAMESPACE = "auth.tokens"
_PREFIX = "ms"
_ID = re.compile(r"\A[0-9a-f]{16}\Z")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str]:
    """``(id, secret)`` of ``ms_<id>_<secret>``; ``InvalidToken`` otherwise."""
    prefix, _, rest = token.strip().partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != _PREFIX or not _ID.match(token_id) or len(secret) < 16:
        raise InvalidToken("not a millstream token (ms_<id>_<secret>)")
    return token_id, secret


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store keeps of a token (never its secret)."""

    id: str
    name: str
    secret_hash: str
    scopes: tuple[str, ...]
    created: float
    revoked: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: SCRAM credentials by mechanism (``ScramCredential.to_json`` form)
    scram: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "name": self.name,
                "secret_hash": self.secret_hash,
                "scopes": list(self.scopes),
                "created": self.created,
                "revoked": self.revoked,
                "meta": self.meta,
                "scram": self.scram,
            }
        )

    @classmethod
    def from_json(cls, token_id: str, raw: bytes) -> TokenRecord:
        data = orjson.loads(raw)
        return cls(
            id=token_id,
            name=data["name"],
            secret_hash=data["secret_hash"],
            scopes=tuple(data["scopes"]),
            created=data["created"],
            revoked=data.get("revoked"),
            meta=data.get("meta") or {},
            scram=data.get("scram") or {},
        )

    def scram_credential(self, mechanism: str) -> ScramCredential | None:
        """This token's SCRAM credential for ``mechanism``, if it has one."""
        data = self.scram.get(mechanism)
        return None if data is None else ScramCredential.from_json(data)

    def targets(self, area: str) -> list[str]:
        """The targets of this token's scopes in ``area`` (``llm`` → project names)."""
        prefix = f"{area}:"
        return [scope[len(prefix) :] for scope in self.scopes if scope.startswith(prefix)]


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is shown once and never stored."""

    record: TokenRecord
    token: str


class TokenStore:
    """Tokens of one ``Store`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        meta: dict[str, Any] | None = None,
        unique_name: bool = False,
    ) -> NewToken:
        """A new token called ``name`` with ``scopes`` (``InvalidScope`` for a bad one).
        ``unique_name`` refuses a name an unrevoked token already has (SASL usernames are
        names: ``tokens create`` keeps them unique)."""
        if not name or len(name) > 200 or not name.isprintable():
            raise InvalidScope(f"token name {name!r}: use 1-200 printable characters")
        for scope in scopes:
            parse_scope(scope)
        if unique_name and any(r.name == name for r in await self.list() if r.revoked is None):
            raise InvalidScope(
                f"a token named {name!r} exists; revoke it first or choose another name",
                hint="token names are SASL usernames and must be unique among live tokens",
            )
        secret = secrets.token_urlsafe(32)
        while True:
            token_id = secrets.token_hex(8)
            token = f"{_PREFIX}_{token_id}_{secret}"
            record = TokenRecord(
                id=token_id,
                name=name,
                secret_hash=_hash(secret),
                scopes=tuple(scopes),
                created=time.time(),
                meta=dict(meta or {}),
                scram={m: scram_credentials(m, token).to_json() for m in SCRAM_MECHANISMS},
            )
            write = KvWrite(TOKENS_NAMESPACE, token_id, record.to_json(), expect_version=0)
            try:
                await self._store.kv_write([write])
            except KvConflict:  # an id collision: astronomically rare, draw again
                continue
            return NewToken(record, token)

    async def list(self) -> list[TokenRecord]:
        """Every token, revoked ones included, in id order."""
        items = await self._store.kv_scan(TOKENS_NAMESPACE)
        return [TokenRecord.from_json(key, item.value) for key, item in items]

    async def get(self, token_id: str) -> TokenRecord:
        item = await self._store.kv_get(TOKENS_NAMESPACE, token_id)
        if item is None:
            raise TokenNotFound(f"no token with id {token_id!r}")
        return TokenRecord.from_json(token_id, item.value)

    async def revoke(self, token_id: str) -> TokenRecord:
        """Mark the token revoked (idempotent); it never verifies again."""
        return await self._update(
            token_id,
            lambda record: (
                record
                if record.revoked is not None
                else dataclasses.replace(record, revoked=time.time())
            ),
        )

    async def update_meta(self, token_id: str, changes: dict[str, Any]) -> TokenRecord:
        """Merge ``changes`` into the token's ``meta`` (a ``None`` value removes the entry);
        services keep per-key settings there (the LLM gateway its rate limits)."""

        def change(record: TokenRecord) -> TokenRecord:
            meta = {**record.meta, **changes}
            return dataclasses.replace(
                record, meta={k: v for k, v in meta.items() if v is not None}
            )

        return await self._update(token_id, change)

    async def _update(
        self, token_id: str, change: Callable[[TokenRecord], TokenRecord]
    ) -> TokenRecord:
        """Apply ``change`` with compare-and-set, again from the fresh record on a conflict."""
        while True:
            item = await self._store.kv_get(TOKENS_NAMESPACE, token_id)
            if item is None:
                raise TokenNotFound(f"no token with id {token_id!r}")
            record = TokenRecord.from_json(token_id, item.value)
            changed = change(record)
            if changed == record:
                return record
            write = KvWrite(
                TOKENS_NAMESPACE, token_id, changed.to_json(), expect_version=item.version
            )
            try:
                await self._store.kv_write([write])
            except KvConflict:
                continue
            return changed

    async def verify(self, token: str) -> TokenRecord:
        """The record of a valid, unrevoked ``token``; ``InvalidToken``/``RevokedToken``."""
        token_id, secret = parse_token(token)
        item = await self._store.kv_get(TOKENS_NAMESPACE, token_id)
        if item is None:
            raise InvalidToken("unknown token")
        record = TokenRecord.from_json(token_id, item.value)
        if not hmac.compare_digest(record.secret_hash, _hash(secret)):
            raise InvalidToken("unknown token")
        if record.revoked is not None:
            raise RevokedToken("this token was revoked")
        return record

    async def verify_password(self, username: str, password: str) -> TokenRecord:
        """SASL/PLAIN: ``password`` is the token, ``username`` its name or id."""
        record = await self.verify(password)
        if username not in (record.name, record.id):
            raise InvalidToken("the username is not this token's name or id")
        return record

    async def find(self, username: str) -> TokenRecord | None:
        """The unrevoked token a SASL username names: its id, else its name when exactly one
        unrevoked token has it (``None`` otherwise)."""
        if _ID.match(username):
            try:
                record = await self.get(username)
            except TokenNotFound:
                record = None
            if record is not None and record.revoked is None:
                return record
        named = [r for r in await self.list() if r.name == username and r.revoked is None]
        return named[0] if len(named) == 1 else None
