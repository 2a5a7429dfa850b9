"""The ``Store`` interface: every front door talks to the log through it and nothing else.

Implementations: ``MemoryStore`` (no disk), ``SqliteStore`` (the embedded default) and, later,
PostgreSQL for scale-out. All of them pass the behavioural suite in ``tests/log/``.

Durability contract: when ``create``/``append``/``delete`` return, the change is on disk (for
stores that have one) under the store's fsync policy; concurrent calls may share one fsync.
"""

from __future__ import annotations

import abc

from ._errors import StreamGone, StreamNotFound
from ._model import AppendRequest, AppendResult, CreateRequest, CreateResult, ReadResult, StreamInfo
from ._notify import Notifier, wait_for_change

__all__ = ["DEFAULT_MAX_READ_BYTES", "Store"]

DEFAULT_MAX_READ_BYTES = (
    1 << 20
)  # one catch-up chunk; a single larger message is still returned whole


class Store(abc.ABC):
    """An ordered, durable log of messages per stream path.

    Paths are opaque strings (``"chat/room-1"``). Positions are ints: position ``n`` is the gap
    before the message whose Kafka offset is ``n``; a stream's ``tail`` is its message count.
    """

    #: Short human name for the startup line, e.g. ``"sqlite:/data/millstream.db"``.
    description: str = "store"

    def __init__(self) -> None:
        self.notifier = Notifier()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open files and recover state. Called once before any other method."""

    async def aclose(self) -> None:
        """Finish in-flight writes, wake live readers, release files."""
        self.notifier.close()

    @abc.abstractmethod
    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        """Create ``path`` (or fork), or confirm an identical existing stream (``created=False``).

        Raises ``StreamConflict`` (different config, soft-deleted path, fork source soft-deleted),
        ``StreamNotFound`` (fork source missing), ``InvalidRequest`` (fork offset past the
        source's tail, bad sub-offset).
        """

    @abc.abstractmethod
    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        """Append, close, or both, atomically, following ``millstream.log._rules.plan_append``."""

    @abc.abstractmethod
    async def head(self, path: str) -> StreamInfo:
        """Metadata of a live stream; raises ``StreamNotFound``/``StreamGone``; no TTL renewal."""

    @abc.abstractmethod
    async def read(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> ReadResult:
        """Messages from ``start`` (at least one if any exist, then up to ``max_bytes``).

        Renews a sliding TTL. ``start`` past the tail raises ``InvalidRequest``. Forks stitch
        their source's messages below the fork point transparently.
        """

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Delete ``path``; soft-delete if forks still reference it (PROTOCOL.md §4.2)."""

    @abc.abstractmethod
    async def list_paths(self, prefix: str = "") -> list[str]:
        """Paths of live (not deleted, not expired) streams starting with ``prefix``, sorted."""

    @abc.abstractmethod
    async def reclaim_expired(self, now: float | None = None) -> int:
        """Delete streams whose TTL or Expires-At has passed; return how many."""

    async def wait(self, path: str, position: int, timeout: float) -> bool:
        """Wait until ``path`` has a message at ``position``, is closed, or is deleted.

        Returns True if that happened (or was already so), False on timeout or shutdown.
        """
        notifier = self.notifier
        future = notifier.subscribe(path)
        try:
            try:
                info = await self.head(path)
            except (StreamNotFound, StreamGone):
                return True
            if info.tail > position or info.closed:
                return True
            if notifier.closing:
                return False
            changed = await wait_for_change(future, timeout)
        finally:
            notifier.unsubscribe(path, future)
        return changed and not notifier.closing
