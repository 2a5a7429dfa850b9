"""``StreamSettings``: how a dual-mode answer is sent (shared by both modes and durable mode)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._backpressure import Backpressure

__all__ = ["StreamSettings"]


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How a dual-mode answer is sent."""

    #: Seconds without an event after which a comment line is sent (None: never).
    heartbeat: float | None = 15.0
    #: Reconnection delay (ms) sent to clients as ``retry:`` (None: the client's default).
    retry: int | None = None
    backpressure: Backpressure = field(default_factory=Backpressure)
    max_batch_items: int = 10_000
    max_batch_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.heartbeat is not None and not self.heartbeat > 0:
            raise ValueError("heartbeat must be a positive number of seconds, or None")
        if self.retry is not None and (isinstance(self.retry, bool) or self.retry < 0):
            raise ValueError("retry must be a non-negative int of milliseconds")
        if self.max_batch_items < 1 or self.max_batch_bytes < 1:
            raise ValueError("max_batch_items and max_batch_bytes must be at least 1")
