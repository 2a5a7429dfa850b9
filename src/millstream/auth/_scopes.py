"""Scopes (``<area>:<target>`` strings on a token) and what they permit (``Permissions``).

- ``read:P``: read streams and topics whose path starts with ``P`` (HTTP GET, HEAD, SSE,
  long-poll; Kafka Fetch, ListOffsets, Metadata, and the topic side of group offsets);
- ``write:P``: append to them and create them (HTTP POST, PUT; Kafka Produce, CreateTopics,
  auto-creation, InitProducerId);
- ``admin:P``: both, and delete (HTTP DELETE; Kafka DeleteTopics, DeleteRecords,
  CreatePartitions);
- ``admin:``: everything: every path, every consumer group, the cluster, ``/metrics``,
  subscriptions;
- ``group:G``: consumer groups whose id starts with ``G`` (join, commit, fetch, describe);
- ``llm:PROJECT``: the LLM gateway as ``PROJECT`` (exact name);
- ``metrics:``: ``GET /metrics``.

A prefix is compared with the canonical path (``canonical_path``) as a plain string prefix:
``read:chat/`` covers ``chat/room-1`` but not ``chatter``; ``read:chat`` covers both. A trailing
``*`` is accepted and means the same as none (``read:chat/*`` is ``read:chat/``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._errors import BadPath, InvalidScope
from ._paths import canonical_path

__all__ = [
    "ADMIN",
    "AREAS",
    "GROUP",
    "LLM",
    "METRICS",
    "READ",
    "WRITE",
    "Permissions",
    "parse_scope",
]

READ = "read"
WRITE = "write"
ADMIN = "admin"
GROUP = "group"
LLM = "llm"
METRICS = "metrics"
AREAS = (READ, WRITE, ADMIN, GROUP, LLM, METRICS)
_PATH_AREAS = (READ, WRITE, ADMIN)
_MAX_TARGET = 1024


def parse_scope(text: str) -> tuple[str, str]:
    """``(area, target)`` of a scope string, with the target in canonical form; ``InvalidScope``
    for anything else."""
    area, colon, target = text.partition(":")
    if not colon or area not in AREAS:
        raise InvalidScope(f"{text!r} is not a scope (<area>:<target>, area one of {AREAS})")
    if len(target) > _MAX_TARGET or not target.isprintable():
        raise InvalidScope(f"{text!r}: the target is too long or has control characters")
    if area == METRICS:
        if target:
            raise InvalidScope(f"{text!r}: metrics takes no target (write 'metrics:')")
        return area, target
    if area == LLM:
        if not target or "*" in target:
            raise InvalidScope(f"{text!r}: llm needs a project name (llm:acme)")
        return area, target
    if target.endswith("*"):
        target = target[:-1]
    if "*" in target:
        raise InvalidScope(f"{text!r}: '*' is only allowed at the end (a prefix)")
    if area in _PATH_AREAS:
        if target.startswith("/"):
            raise InvalidScope(f"{text!r}: stream paths have no leading '/' (read:chat/)")
        try:
            canonical_path(target)
        except BadPath as exc:
            raise InvalidScope(f"{text!r}: {exc.message}") from exc
    return area, target


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a set of scopes permits, as prefix tuples ready for ``str.startswith``.

    ``read``, ``write`` and ``admin`` hold path prefixes (an ``admin`` prefix is also in
    ``read`` and ``write``); ``groups`` group-id prefixes; ``llm`` project names. ``everything``
    is ``admin:``.
    """

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    llm: tuple[str, ...] = ()
    metrics: bool = False
    everything: bool = False

    @classmethod
    def from_scopes(cls, scopes: Iterable[str]) -> Permissions:
        found: dict[str, list[str]] = {area: [] for area in AREAS}
        for scope in scopes:
            area, target = parse_scope(scope)
            found[area].append(target)
        admin = tuple(found[ADMIN])
        everything = "" in admin
        return cls(
            read=tuple(found[READ]) + admin,
            write=tuple(found[WRITE]) + admin,
            admin=admin,
            groups=("",) if everything else tuple(found[GROUP]),
            llm=tuple(found[LLM]),
            metrics=everything or bool(found[METRICS]),
            everything=everything,
        )

    def can_read(self, path: str) -> bool:
        return path.startswith(self.read)

    def can_write(self, path: str) -> bool:
        return path.startswith(self.write)

    def can_admin(self, path: str) -> bool:
        return path.startswith(self.admin)

    def can_describe(self, path: str) -> bool:
        """Whether the path may be named to this principal at all (any of read/write/admin)."""
        return path.startswith(self.read) or path.startswith(self.write)

    def can_group(self, group_id: str) -> bool:
        return group_id.startswith(self.groups)

    def can(self, action: str, path: str) -> bool:
        """``action`` (``read``, ``write``, ``admin``, ``group``) on ``path``."""
        if action == READ:
            return path.startswith(self.read)
        if action == WRITE:
            return path.startswith(self.write)
        if action == ADMIN:
            return path.startswith(self.admin)
        if action == GROUP:
            return path.startswith(self.groups)
        raise ValueError(f"unknown action {action!r}")
