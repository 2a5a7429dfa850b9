"""The state of one subscription: configuration, stream links with cursors, and the wake.

PROTOCOL.md §7: a subscription is *idle* when no wake is in flight and no lease is held; it has
*pending work* when some linked stream's tail is past its ``acked`` cursor. A wake carries a
``generation`` (monotonic per subscription incarnation) and a unique ``wake_id``; callbacks,
acks and releases must match both. Everything here is plain data that round-trips through JSON
so a restart resumes exactly where the last durable snapshot left off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ._config import SubscriptionConfig

__all__ = ["Link", "Status", "Subscription"]

Status = Literal["active", "failed"]


@dataclass(slots=True)
class Link:
    """One linked stream: why it is linked and how far it has been processed."""

    path: str
    explicit: bool = False
    glob: bool = False
    acked: int = 0  # position; messages below it are processed (§6.1 ``acked_offset``)
    stream_id: int | None = None  # the store's id of the stream linked; None if it did not exist

    @property
    def link_type(self) -> str:
        return "explicit" if self.explicit else "glob"  # §6.1: explicit takes precedence


@dataclass(slots=True)
class Subscription:
    id: str
    config: SubscriptionConfig
    config_hash: str
    incarnation: str  # random per create; a re-created id never accepts the old tokens
    created_at: str
    stream_root: str  # absolute URL the subscription was created under (callback URLs)
    links: dict[str, Link] = field(default_factory=dict)
    status: Status = "active"
    generation: int = 0
    wake_id: str | None = None
    wake_snapshot: dict[str, int] = field(default_factory=dict)  # path -> tail at wake time
    wake_stream_hint: str | None = None  # the stream that triggered the wake
    holder: str | None = None  # pull-wake worker holding the lease
    lease_deadline: float | None = None  # unix seconds
    retry_count: int = 0
    next_attempt_at: float | None = None  # unix seconds of the next webhook attempt
    deleted: bool = False  # set under the lock on DELETE; later operations fail

    @property
    def idle(self) -> bool:
        return self.wake_id is None and self.holder is None

    def link(
        self, path: str, kind: Literal["explicit", "glob"], acked: int, stream_id: int | None
    ) -> Link:
        """Add ``kind`` to the link of ``path``, creating it at ``acked`` if it is new."""
        existing = self.links.get(path)
        if existing is None:
            existing = self.links[path] = Link(path, acked=acked, stream_id=stream_id)
        if kind == "explicit":
            existing.explicit = True
        else:
            existing.glob = True
        return existing

    def clear_wake(self) -> None:
        self.wake_id = None
        self.wake_snapshot = {}
        self.wake_stream_hint = None
        self.holder = None
        self.lease_deadline = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "id": self.id,
            "config": self.config.to_json(),
            "config_hash": self.config_hash,
            "incarnation": self.incarnation,
            "created_at": self.created_at,
            "stream_root": self.stream_root,
            "links": [
                [k.path, k.explicit, k.glob, k.acked, k.stream_id] for k in self.links.values()
            ],
            "status": self.status,
            "generation": self.generation,
            "wake_id": self.wake_id,
            "wake_snapshot": self.wake_snapshot,
            "wake_stream_hint": self.wake_stream_hint,
            "holder": self.holder,
            "lease_deadline": self.lease_deadline,
            "retry_count": self.retry_count,
            "next_attempt_at": self.next_attempt_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Subscription:
        status = data["status"]
        sub = cls(
            id=data["id"],
            config=SubscriptionConfig.from_json(data["config"]),
            config_hash=data["config_hash"],
            incarnation=data["incarnation"],
            created_at=data["created_at"],
            stream_root=data["stream_root"],
            status="failed" if status == "failed" else "active",
            generation=int(data["generation"]),
            wake_id=data["wake_id"],
            wake_snapshot={str(k): int(v) for k, v in data["wake_snapshot"].items()},
            wake_stream_hint=data["wake_stream_hint"],
            holder=data["holder"],
            lease_deadline=data["lease_deadline"],
            retry_count=int(data["retry_count"]),
            next_attempt_at=data["next_attempt_at"],
        )
        for path, explicit, glob, acked, stream_id in data["links"]:
            sid = None if stream_id is None else int(stream_id)
            sub.links[path] = Link(path, bool(explicit), bool(glob), int(acked), sid)
        return sub
