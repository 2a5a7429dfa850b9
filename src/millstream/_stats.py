"""Counters cheap enough for hot paths, read by ``/metrics`` (``millstream.node``).

The doors, the store and the services count with plain integers and ``Histogram.observe``
(a ``bisect`` and two additions); nothing here locks, allocates per call or knows Prometheus.
The node's metrics collector turns these into Prometheus families when scraped. A histogram
is written by one thread (the event loop, or the SQLite writer's threads for store figures);
a scrape from another thread may see a count one step ahead of the sum, which Prometheus
tolerates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["LATENCY_BUCKETS", "SIZE_BUCKETS", "Histogram", "Sample"]

#: Seconds: 50 µs to 10 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Counts (group-commit sizes): 1 to 4096.
SIZE_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Histogram:
    """Observations in fixed buckets (upper bounds, inclusive) plus their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ending with ``+Inf``."""
        pairs: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return pairs


@dataclass(frozen=True, slots=True)
class Sample:
    """One value a service reports for ``/metrics`` (``Service.samples``): ``name`` without the
    ``millstream_`` prefix (a counter's ends in ``_total``), its labels as pairs."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    labels: tuple[tuple[str, str], ...]
    value: float
