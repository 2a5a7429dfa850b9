"""What the HTTP door counts for ``/metrics``: requests by route and status, latency by route,
appends and their bytes, live readers (SSE and long-poll) open now.

Plain integers and ``Histogram``s updated on the event loop (see ``millstream._stats``); the
fast path pays a dictionary update and a ``bisect`` per request.
"""

from __future__ import annotations

from millstream._stats import Histogram

__all__ = ["HttpStats"]


class HttpStats:
    """Counters of one HTTP app. Routes: ``create``, ``append``, ``read``, ``head``,
    ``long_poll``, ``sse``, ``delete``, ``preflight``, ``health``, ``service``."""

    __slots__ = ("append_bytes", "appends", "latency", "live_readers", "requests")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.appends = 0
        self.append_bytes = 0
        self.live_readers = 0

    def done(self, route: str, status: int, seconds: float | None) -> None:
        """One answered request (``seconds``: ``None`` for live responses)."""
        key = (route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        if seconds is not None:
            histogram = self.latency.get(route)
            if histogram is None:
                histogram = self.latency[route] = Histogram()
            histogram.observe(seconds)

    def appended(self, status: int, size: int) -> None:
        if status < 300:
            self.appends += 1
            self.append_bytes += size
