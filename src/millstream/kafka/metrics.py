"""Counters a client keeps about itself: records and bytes sent and received, errors, and
average latencies. ``client.metrics.snapshot()`` returns them as one frozen value."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["ClientMetrics", "MetricsSnapshot"]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The counters at one moment; latencies are per call (a batch is one call)."""

    messages_produced: int = 0
    messages_consumed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    errors_total: int = 0
    produce_latency_avg_ms: float = 0.0
    consume_latency_avg_ms: float = 0.0
    uptime_ms: float = 0.0


class ClientMetrics:
    """The counters of one client; its producer and consumers record into it.

    Recording happens on the event loop that runs the client and takes no lock (it is on the
    path of every record); ``snapshot()`` and ``reset()`` may be called from any thread: the
    snapshot is taken under a lock, so two snapshots never interleave.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._produced = self._consumed = 0
            self._sent = self._received = 0
            self._errors = 0
            self._produce_ms = self._consume_ms = 0.0
            self._produce_calls = self._consume_calls = 0
            self._started = time.monotonic()

    def record_produce(self, message_count: int, nbytes: int, latency_ms: float) -> None:
        self._produced += message_count
        self._sent += nbytes
        self._produce_ms += latency_ms
        self._produce_calls += 1

    def record_consume(
        self, message_count: int, nbytes: int, latency_ms: float | None = None
    ) -> None:
        """``latency_ms=None``: records handed out one by one (``async for``), no call timed."""
        self._consumed += message_count
        self._received += nbytes
        if latency_ms is not None:
            self._consume_ms += latency_ms
            self._consume_calls += 1

    def record_error(self) -> None:
        self._errors += 1

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                messages_produced=self._produced,
                messages_consumed=self._consumed,
                bytes_sent=self._sent,
                bytes_received=self._received,
                errors_total=self._errors,
                produce_latency_avg_ms=self._produce_ms / self._produce_calls
                if self._produce_calls
                else 0.0,
                consume_latency_avg_ms=self._consume_ms / self._consume_calls
                if self._consume_calls
                else 0.0,
                uptime_ms=(time.monotonic() - self._started) * 1000,
            )
