"""The ``Store`` interface: every front door talks to the log through it and nothing else.

Implementations: ``MemoryStore`` (no disk), ``SqliteStore`` (the embedded default) and, later,
PostgreSQL for scale-out. All of them pass the behavioural suite in ``tests/log/``.

Durability contract: when ``create``/``append``/``delete`` return, the change is on disk (for
stores that have one) under the store's fsync policy; concurrent calls may share one fsync.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from millstream._stats import Histogram

from ._errors import StreamGone, StreamNotFound
from ._model import (
    AppendRequest,
    AppendResult,
    BatchReadResult,
    CreateRequest,
    CreateResult,
    KafkaBatch,
    KvItem,
    KvWrite,
    ProduceResult,
    ReadResult,
    StreamInfo,
)
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
    #: True when other processes may use the same store at once (``PostgresStore``): a node
    #: on it is one of a cluster (``Membership``, ``Lease``). False: the node is alone.
    shared: bool = False

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
        """Payloads from ``start``, one per position (at least one if any exist, then up to
        ``max_bytes``).

        Renews a sliding TTL. ``start`` past the tail raises ``InvalidRequest``; a ``start``
        below the log start reads from the log start (``result.start`` says where). Forks
        stitch their source's messages below the fork point transparently. Kafka batches read
        as their record values (``millstream.log._views`` says how, JSON streams included).
        """

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Delete ``path``; soft-delete if forks still reference it (PROTOCOL.md §4.2)."""

    @abc.abstractmethod
    async def list_paths(self, prefix: str = "", *, include_internal: bool = False) -> list[str]:
        """Paths of live (not deleted, not expired) streams starting with ``prefix``, sorted.

        Internal streams (``millstream.log.is_internal``: subscription state, service logs)
        are left out unless ``include_internal``; both doors' listings rely on that.
        """

    # -- Kafka entries (DESIGN.md "The log"; both doors read each other's entries) ---------

    @abc.abstractmethod
    async def produce(self, path: str, batch: KafkaBatch) -> ProduceResult:
        """Append one Kafka record batch as one entry spanning ``batch.record_count`` positions.

        Kafka idempotence (KIP-98) when ``batch.producer_id >= 0``: per (stream, producer id)
        the log keeps the epoch, the last sequence and the last 5 batches' (first seq, last
        seq, base offset), committed in the same transaction as the data. A retry of one of
        those batches answers its original offset with ``duplicate=True`` and writes nothing;
        an older repeat raises ``DuplicateSequence``; a gap raises ``ProducerSequenceGap``; an
        epoch below the known one raises ``StaleProducerEpoch``; a higher epoch must start at
        sequence 0; an unknown producer id not at sequence 0 raises ``UnknownProducerId`` (a
        ``ProducerSequenceGap``). The rules are ``millstream.log._rules.plan_produce``. Closed,
        deleted and missing streams raise as ``append`` does. Durable (under the fsync policy)
        when it returns; concurrent produces share a commit. ``batch`` comes from
        ``millstream.log.parse_batch`` (header and CRC checked, records never decoded).
        """

    @abc.abstractmethod
    async def read_batches(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> BatchReadResult:
        """Kafka v2 batches from position ``start`` (see ``BatchReadResult``).

        ``start`` below the log start or past the tail raises ``OffsetOutOfRange``; at the tail
        the result is empty. Renews a sliding TTL like ``read``.
        """

    @abc.abstractmethod
    async def offset_for_time(self, path: str, timestamp_ms: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record whose timestamp is ``>= timestamp_ms``
        (Kafka ListOffsets by time), or ``None`` when there is none."""

    @abc.abstractmethod
    async def delete_records(self, path: str, before: int) -> int:
        """Truncate the start of the log below ``before`` (Kafka DeleteRecords); return the new
        log start. ``before=-1`` means the tail. Past the tail raises ``OffsetOutOfRange``; a
        ``before`` below the current log start changes nothing. Reads over either door never
        return a position below the log start again (an HTTP read from earlier starts there).
        A stream that forks still read raises ``InvalidRequest`` (their data would go), and a
        fork cannot be created below its source's log start."""

    @abc.abstractmethod
    async def init_producer_id(self) -> tuple[int, int]:
        """A new Kafka producer id, never handed out before by this store, and its epoch (0)."""

    # -- the key-value table: small durable state of services, topics and consumer groups --

    @abc.abstractmethod
    async def kv_get(self, namespace: str, key: str) -> KvItem | None:
        """The committed value of ``key``, or ``None``."""

    @abc.abstractmethod
    async def kv_scan(self, namespace: str, prefix: str = "") -> list[tuple[str, KvItem]]:
        """Every ``(key, item)`` of ``namespace`` whose key starts with ``prefix``, sorted."""

    @abc.abstractmethod
    async def kv_write(self, writes: Sequence[KvWrite]) -> list[int]:
        """Apply ``writes`` atomically; return the new version of each (0 for deletes and
        checks). Any failed expectation raises ``KvConflict`` and applies none of them.
        Durable when it returns, like an append."""

    @abc.abstractmethod
    async def reclaim_expired(self, now: float | None = None) -> int:
        """Delete streams whose TTL or Expires-At has passed; return how many."""

    def histograms(self) -> dict[str, Histogram]:
        """Distributions ``/metrics`` exports, by name (the SQLite store: fsync seconds and
        jobs per group commit); none by default."""
        return {}

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
