"""A rolling window of floats with O(log n) mean, deviation, quantiles and median.

The baselines of every detector: per (service, model, metric) the last ``size`` values. Running
sums give the mean and deviation (re-summed exactly every ``RESUM_EVERY`` updates so rounding
never drifts); a sorted copy gives quantiles. Its state round-trips exactly through
``to_state``/``from_state`` (floats survive JSON), so a restored Sentinel computes the very same
numbers as one that never stopped.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from typing import Any

__all__ = ["RollingWindow", "SortedWindow", "quantile"]

RESUM_EVERY = 10_000


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
        """Add a window's worth at once: re-sorting beats one insertion per value."""
        values = self.values
        values.extend(items)
        while len(values) > self.size:
            values.popleft()
        self.ordered = sorted(values)

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


class RollingWindow:
    """The last ``size`` values pushed; with ``ordered=True`` also kept sorted (quantiles,
    median, MAD), which costs an insertion and a deletion in a sorted list per value."""

    __slots__ = ("_since_resum", "_sum", "_sumsq", "ordered", "size", "sorted", "values")

    def __init__(self, size: int, *, ordered: bool = False) -> None:
        self.size = size
        self.sorted = ordered
        self.values: deque[float] = deque()
        self.ordered: list[float] = []
        self._sum = 0.0
        self._sumsq = 0.0
        self._since_resum = 0

    def __len__(self) -> int:
        return len(self.values)

    def push(self, value: float) -> None:
        values = self.values
        values.append(value)
        if self.sorted:
            insort(self.ordered, value)
        self._sum += value
        self._sumsq += value * value
        if len(values) > self.size:
            old = values.popleft()
            if self.sorted:
                ordered = self.ordered
                del ordered[bisect_left(ordered, old)]
            self._sum -= old
            self._sumsq -= old * old
        self._since_resum += 1
        if self._since_resum >= RESUM_EVERY:
            self._sum = math.fsum(values)
            self._sumsq = math.fsum(v * v for v in values)
            self._since_resum = 0

    @property
    def mean(self) -> float:
        return self._sum / len(self.values)

    @property
    def std(self) -> float:
        """Population standard deviation."""
        count = len(self.values)
        mean = self._sum / count
        return math.sqrt(max(0.0, self._sumsq / count - mean * mean))

    def mean_std(self) -> tuple[float, float]:
        """Mean and population standard deviation in one step."""
        count = len(self.values)
        mean = self._sum / count
        return mean, math.sqrt(max(0.0, self._sumsq / count - mean * mean))

    def quantile(self, q: float) -> float:
        return quantile(self.ordered, q)

    @property
    def median(self) -> float:
        return quantile(self.ordered, 0.5)

    def mad(self) -> float:
        """Median absolute deviation from the median (O(n log n); MAD is off by default)."""
        median = self.median
        return quantile(sorted(abs(v - median) for v in self.values), 0.5)

    def to_state(self) -> dict[str, Any]:
        return {
            "values": list(self.values),
            "sum": self._sum,
            "sumsq": self._sumsq,
            "since": self._since_resum,
        }

    @classmethod
    def from_state(
        cls, size: int, state: dict[str, Any], *, ordered: bool = False
    ) -> RollingWindow:
        window = cls(size, ordered=ordered)
        window.values = deque(float(v) for v in state["values"])
        if ordered:
            window.ordered = sorted(window.values)
        window._sum = float(state["sum"])
        window._sumsq = float(state["sumsq"])
        window._since_resum = int(state["since"])
        return window
