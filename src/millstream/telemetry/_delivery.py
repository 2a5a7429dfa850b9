"""What the non-blocking path decides, shared by the sync and async clients (no Kafka I/O).

The caller's thread only validates and queues (``offer``). A sender (a thread with kafka-python,
or a task with aiokafka) takes batches, serializes them and hands them to the Kafka producer;
acks and failures come back through ``acked``/``failed``. While the broker is unreachable the
sender moves events to the disk spool instead, retrying with backoff; when a send succeeds again
it replays the spool. An event is never lost without being counted: it is queued, in flight,
sent, spooled, or ``dropped`` (memory queue full *and* spool full or off), and every drop is
logged. Delivery is at least once: an event whose ack was lost may be sent twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ._config import SentinelConfig
from ._spool import ClaimedSegment, Spool
from ._track import Queued, encode

__all__ = ["BATCH", "Delivery", "SentinelStats"]

log = logging.getLogger("millstream.telemetry")

MIN_BACKOFF = 0.1  # seconds before the first reconnect attempt
MAX_BACKOFF = 5.0
BATCH = 512  # events handed to the producer per sender iteration


@dataclass(frozen=True, slots=True)
class SentinelStats:
    """A snapshot of the non-blocking path (``client.stats()``).

    ``sent`` counts broker acks (``replayed`` of them came from the spool); ``spooled`` counts
    events written to the disk spool; ``dropped`` counts events lost because the memory queue
    and the spool were both full (or the spool was off). ``queued`` and ``in_flight`` are what
    is in memory now; ``spool_bytes`` what waits on disk.
    """

    queued: int
    in_flight: int
    sent: int
    spooled: int
    replayed: int
    dropped: int
    spool_bytes: int
    connected: bool
    last_error: str | None


class Delivery:
    """Queue, counters, spool and reconnect backoff of one client."""

    def __init__(self, config: SentinelConfig) -> None:
        self.config = config
        self.queue: deque[Queued] = deque()
        self.wake_first = config.linger_ms == 0  # no lingering: wake the sender per event
        self._counts = threading.Lock()
        self.in_flight = 0
        self.sent = 0
        self.spooled = 0
        self.replayed = 0
        self.dropped = 0
        self.connected = False
        self.last_error: str | None = None
        self.backoff = MIN_BACKOFF
        self.next_attempt = 0.0  # monotonic time of the next reconnect attempt
        directory = config.resolved_spool_dir()
        self.spool = None if directory is None else Spool(directory, config.spool_max_bytes)
        self.spool_pending = self.spool is not None and self.spool.has_segments()

    # -- the caller's side ------------------------------------------------------------

    def offer(self, item: Queued) -> bool:
        """Queue an event (or a ``track`` call); past ``queue_size`` write it to the spool,
        else count it dropped. True when the sender should be woken: a full batch waits (or,
        with ``linger_ms=0``, anything does). Otherwise it looks every ``linger_ms`` while
        events come, so a caller rarely pays for waking a thread."""
        queue = self.queue
        size = len(queue)
        if size < self.config.queue_size:
            queue.append(item)
            return size + 1 == BATCH or (self.wake_first and size == 0)
        self.to_spool([encode(item)], "the in-memory queue is full")
        return False

    # -- the sender's side ------------------------------------------------------------

    def take(self, limit: int = BATCH) -> list[Queued]:
        queue = self.queue
        batch: list[Queued] = []
        while queue and len(batch) < limit:
            batch.append(queue.popleft())
        return batch

    def to_spool(self, payloads: Sequence[bytes], reason: str) -> None:
        """Keep ``payloads`` on disk; whatever does not fit is dropped, counted and logged."""
        written = self.spool.append(payloads) if self.spool is not None else 0
        lost = len(payloads) - written
        with self._counts:
            self.spooled += written
            self.dropped += lost
        if written:
            self.spool_pending = True
        if lost:
            where = "the spool is full" if self.spool is not None else "spooling is off"
            log.warning("dropped %d telemetry event(s): %s and %s", lost, reason, where)

    def spill_queue(self, reason: str) -> None:
        """Move everything queued to the spool (the broker is down, or the client closing)."""
        while batch := self.take():
            self.to_spool([encode(item) for item in batch], reason)

    def handed(self, count: int) -> None:
        with self._counts:
            self.in_flight += count

    def acked(self, *, replayed: bool) -> None:
        with self._counts:
            self.in_flight -= 1
            self.sent += 1
            if replayed:
                self.replayed += 1
        if not self.connected:
            self.up()

    def failed(self, payload: bytes, error: BaseException | str) -> None:
        """A handed-over event the broker did not take: spool it and back off."""
        with self._counts:
            self.in_flight -= 1
        self.down(error)
        self.to_spool([payload], f"the broker did not take it ({error})")

    def not_handed(self, payloads: Sequence[bytes], error: BaseException | str) -> None:
        """Events the producer refused before taking them (no metadata, client closed)."""
        self.down(error)
        self.to_spool(payloads, f"the producer refused it ({error})")

    def claim_replay(self) -> ClaimedSegment | None:
        """The oldest spooled segment to resend: when connected, or as the probe of a
        reconnect attempt (its failures are spooled again and back off further)."""
        if self.spool is None or not self.spool_pending or not self.may_attempt():
            return None
        segment = self.spool.claim_oldest()
        if segment is None:
            self.spool_pending = False
        return segment

    # -- health -----------------------------------------------------------------------

    def up(self) -> None:
        if not self.connected:
            log.info("telemetry broker reachable again")
        self.connected = True
        self.backoff = MIN_BACKOFF

    def down(self, error: BaseException | str) -> None:
        self.last_error = str(error) or type(error).__name__
        if self.connected:
            log.warning("telemetry broker unreachable: %s; spooling events", self.last_error)
        self.connected = False
        self.next_attempt = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def may_attempt(self) -> bool:
        return self.connected or time.monotonic() >= self.next_attempt

    def stats(self) -> SentinelStats:
        with self._counts:
            return SentinelStats(
                queued=len(self.queue),
                in_flight=self.in_flight,
                sent=self.sent,
                spooled=self.spooled,
                replayed=self.replayed,
                dropped=self.dropped,
                spool_bytes=0 if self.spool is None else self.spool.size,
                connected=self.connected,
                last_error=self.last_error,
            )

    def idle(self) -> bool:
        """Nothing queued and nothing awaiting an ack."""
        return not self.queue and self.in_flight <= 0
