"""Rolling windows of floats with O(log n) mean, deviation, quantiles and median.

The baselines of every detector: per (service, model) the last ``size`` values of each metric
(``Baselines``). Running sums give the mean and deviation (re-summed exactly every
``RESUM_EVERY`` updates so rounding never drifts); a sorted copy gives quantiles. State
round-trips exactly through ``to_state``/``from_state`` (floats survive JSON), so a restored
Sentinel computes the very same numbers as one that never stopped.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Any

__all__ = ["METRICS", "Baselines", "SortedWindow", "quantile"]

RESUM_EVERY = 10_000
METRICS = ("latency_ms", "total_tokens", "cost_usd")  # what the baselines hold, in this order


def quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of an ascending list (``q`` in [0, 1])."""
    last = len(ordered) - 1
    position = q * last
    low = int(position)
    if low >= last:
        return ordered[last]
    fraction = position - low
    return ordered[low] + (ordered[low + 1] - ordered[low]) * fraction


class SortedWindow:
    """The last ``size`` values pushed, kept sorted too (quantiles only: PSI's reference)."""

    __slots__ = ("ordered", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque()
        self.ordered: list[float] = []

    def __len__(self) -> int:
        return len(self.values)

    def extend(self, items: list[float]) -> None:
        """Add a window's worth at once: the values that leave are taken out of ``ordered``
        and the new ones merged in (a sort of two ascending runs: about half the time of
        sorting the window afresh, for 100 values into 1,000)."""
        values, ordered = self.values, self.ordered
        values.extend(items)
        for _ in range(len(values) - self.size):
            del ordered[bisect_left(ordered, values.popleft())]
        ordered += items
        ordered.sort()

    def mean(self) -> float:
        return math.fsum(self.values) / len(self.values)

    def to_state(self) -> list[float]:
        return list(self.values)

    @classmethod
    def from_state(cls, size: int, values: list[float]) -> SortedWindow:
        window = cls(size)
        window.values = deque(float(v) for v in values)
        window.ordered = sorted(window.values)
        return window


class Baselines:
    """The last ``size`` calls of one key: latency, total tokens and cost side by side (one
    deque of triples), each with running sums for its mean and deviation; latency also kept
    sorted (quantiles, median, MAD), an insertion and a deletion in a sorted list per call.

    One object and one ``push`` per call, because the Sentinel runs this for every event.
    Each metric's numbers are exactly those of a window of its own (same sums, same order of
    operations), and ``to_state`` writes one such window per metric.
    """

    __slots__ = (
        "calls",
        "cost_sq",
        "cost_sum",
        "latency_sq",
        "latency_sum",
        "ordered",
        "since",
        "size",
        "tokens_sq",
        "tokens_sum",
    )

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: deque[tuple[float, float, float]] = deque()
        self.ordered: list[float] = []  # the latencies, ascending
        self.latency_sum = self.latency_sq = 0.0
        self.tokens_sum = self.tokens_sq = 0.0
        self.cost_sum = self.cost_sq = 0.0
        self.since = 0  # pushes since the sums were last recomputed exactly

    def __len__(self) -> int:
        return len(self.calls)

    def push(self, latency: float, tokens: float, cost: float) -> None:
        calls = self.calls
        calls.append((latency, tokens, cost))
        insort(self.ordered, latency)
        self.latency_sum += latency
        self.latency_sq += latency * latency
        self.tokens_sum += tokens
        self.tokens_sq += tokens * tokens
        self.cost_sum += cost
        self.cost_sq += cost * cost
        if len(calls) > self.size:
            old_latency, old_tokens, old_cost = calls.popleft()
            ordered = self.ordered
            del ordered[bisect_left(ordered, old_latency)]
            self.latency_sum -= old_latency
            self.latency_sq -= old_latency * old_latency
            self.tokens_sum -= old_tokens
            self.tokens_sq -= old_tokens * old_tokens
            self.cost_sum -= old_cost
            self.cost_sq -= old_cost * old_cost
        self.since += 1
        if self.since >= RESUM_EVERY:
            self.latency_sum, self.latency_sq = _sums(self.column(0))
            self.tokens_sum, self.tokens_sq = _sums(self.column(1))
            self.cost_sum, self.cost_sq = _sums(self.column(2))
            self.since = 0

    def column(self, index: int) -> list[float]:
        """One metric's values, oldest first (0 latency, 1 tokens, 2 cost)."""
        return [call[index] for call in self.calls]

    @property
    def median(self) -> float:
        """The median latency."""
        return quantile(self.ordered, 0.5)

    def mad(self) -> float:
        """Median absolute deviation of latency from its median (O(n log n); MAD is off by
        default)."""
        median = self.median
        return quantile(sorted(abs(v - median) for v in self.ordered), 0.5)

    def to_state(self) -> dict[str, dict[str, Any]]:
        """One window per metric: ``{"values", "sum", "sumsq", "since"}`` each."""
        sums = (
            (self.latency_sum, self.latency_sq),
            (self.tokens_sum, self.tokens_sq),
            (self.cost_sum, self.cost_sq),
        )
        return {
            metric: {"values": self.column(i), "sum": total, "sumsq": squares, "since": self.since}
            for i, (metric, (total, squares)) in enumerate(zip(METRICS, sums, strict=True))
        }

    @classmethod
    def from_state(cls, size: int, state: dict[str, dict[str, Any]]) -> Baselines:
        baselines = cls(size)
        latency, tokens, cost = (state[metric] for metric in METRICS)
        baselines.calls = deque(
            (float(a), float(b), float(c))
            for a, b, c in zip(latency["values"], tokens["values"], cost["values"], strict=True)
        )
        baselines.ordered = sorted(call[0] for call in baselines.calls)
        baselines.latency_sum, baselines.latency_sq = float(latency["sum"]), float(latency["sumsq"])
        baselines.tokens_sum, baselines.tokens_sq = float(tokens["sum"]), float(tokens["sumsq"])
        baselines.cost_sum, baselines.cost_sq = float(cost["sum"]), float(cost["sumsq"])
        baselines.since = int(latency["since"])  # the three always move together
        return baselines


def _sums(values: list[float]) -> tuple[float, float]:
    return math.fsum(values), math.fsum(v * v for v in values)
