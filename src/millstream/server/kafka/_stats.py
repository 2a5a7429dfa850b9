"""What the Kafka door counts for ``/metrics``: requests and latency by API, produced batches,
records and bytes, fetched bytes, fetches parked waiting for data now.

Plain integers and ``Histogram``s on the event loop (``millstream._stats``).
"""

from __future__ import annotations

from millstream._stats import Histogram

__all__ = ["KafkaStats"]


class KafkaStats:
    """Counters of one broker; APIs are named as Kafka names them (``Produce``, ``Fetch``)."""

    __slots__ = (
        "fetched_bytes",
        "latency",
        "parked_fetches",
        "produced_batches",
        "produced_bytes",
        "produced_records",
        "requests",
    )

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.latency: dict[str, Histogram] = {}
        self.produced_batches = 0
        self.produced_records = 0
        self.produced_bytes = 0
        self.fetched_bytes = 0
        self.parked_fetches = 0

    def done(self, api: str, seconds: float) -> None:
        requests = self.requests
        requests[api] = requests.get(api, 0) + 1
        histogram = self.latency.get(api)
        if histogram is None:
            histogram = self.latency[api] = Histogram()
        histogram.observe(seconds)
