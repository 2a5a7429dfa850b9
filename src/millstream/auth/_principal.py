"""Who a request acts as: a token's principal, or the anonymous one of an open node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._scopes import Permissions
from ._tokens import TokenRecord

__all__ = ["ANONYMOUS", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """``id`` and ``name`` of the token (``""``/``"anonymous"`` without one) and what its
    scopes permit. Doors keep it per request (HTTP) or per connection (Kafka)."""

    id: str
    name: str
    permissions: Permissions
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return not self.id

    @classmethod
    def of(cls, record: TokenRecord) -> Principal:
        return cls(record.id, record.name, Permissions.from_scopes(record.scopes), record.meta)

    def __str__(self) -> str:
        return self.name if self.anonymous else f"{self.name} ({self.id})"


#: Requests without a token on a node that does not require one: everything is permitted.
ANONYMOUS = Principal("", "anonymous", Permissions.from_scopes(["admin:"]))
