"""What the HTTP door counts for ``/metrics``: requests by route and status, latency by route,
appends and their bytes, live readers (SSE and long-poll) open now.

Plain integers and ``Histogram``s updated on the event loop (see ``millstream._stats``). The
fast path keeps its route's ``RouteStats`` and pays, per request, two clock reads, a dict
update keyed by the status and a ``bisect`` (about half a microsecond on a quiet core;
``benchmarks/security.py`` measures the whole request).
"""

from __future__ import annotations

from bisect import bisect_left

from millstream._stats import LATENCY_BUCKETS, Histogram

__all__ = ["HttpStats", "RouteStats"]


class RouteStats(Histogram):
    """One route's answers: a count per status, and the latency histogram."""

    __slots__ = ("statuses",)

    def __init__(self) -> None:
        super().__init__(LATENCY_BUCKETS)
        self.statuses: dict[int, int] = {}

    def done(self, status: int, seconds: float) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def count_only(self, status: int) -> None:
        """A live response (SSE, long-poll): counted, its duration is not a latency."""
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1


class HttpStats:
    """Counters of one HTTP app. Routes: ``create``, ``append``, ``read``, ``head``,
    ``long_poll``, ``sse``, ``delete``, ``preflight``, ``health``, ``service``, ``other``."""

    __slots__ = ("append_bytes", "appends", "live_readers", "routes")

    def __init__(self) -> None:
        self.routes: dict[str, RouteStats] = {}
        self.appends = 0
        self.append_bytes = 0
        self.live_readers = 0

    def route(self, name: str) -> RouteStats:
        stats = self.routes.get(name)
        if stats is None:
            stats = self.routes[name] = RouteStats()
        return stats

    def done(self, route: str, status: int, seconds: float | None) -> None:
        """One answered request (``seconds``: ``None`` for live responses)."""
        stats = self.route(route)
        if seconds is None:
            stats.count_only(status)
        else:
            stats.done(status, seconds)

    def appended(self, status: int, size: int) -> None:
        if status < 300:
            self.appends += 1
            self.append_bytes += size
