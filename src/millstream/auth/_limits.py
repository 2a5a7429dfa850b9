"""Limits: what a token (or a client address) may do per second and at once.

``AuthLimits`` is the one set of knobs (``millstream serve`` flags of the same names); every
limit is off at ``0``. ``RateLimiter`` keeps one token bucket per key: ``take`` refuses a
request and says when to retry (HTTP 429 with ``Retry-After``); ``charge`` lets the work
through and returns how long the client should now wait (Kafka's ``throttle_time_ms``: the
broker answers, then stops reading from the connection for that long, KIP-219).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AuthLimits", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class AuthLimits:
    """Per-token limits (``0``: none) and the brute-force guard per client address."""

    #: HTTP requests per second per token (a burst of ``request_burst`` is allowed)
    request_rate: float = 0.0
    request_burst: float = 0.0  # 0: twice the rate, at least 1
    #: SSE and long-poll readers open at once per token
    max_live_readers: int = 0
    #: Kafka connections authenticated as one token at once
    max_connections: int = 0
    #: Kafka quotas per token, bytes per second (Kafka's producer_byte_rate/consumer_byte_rate)
    produce_byte_rate: float = 0.0
    fetch_byte_rate: float = 0.0
    #: failed authentications per second per client address before it gets 429s
    failure_rate: float = 1.0
    failure_burst: float = 20.0
    #: seconds between checks of the tokens in use (revocations cut live readers this fast)
    recheck_interval: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "request_rate",
            "request_burst",
            "max_live_readers",
            "max_connections",
            "produce_byte_rate",
            "fetch_byte_rate",
            "failure_rate",
            "failure_burst",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.recheck_interval <= 0:
            raise ValueError("recheck_interval must be positive")


class RateLimiter:
    """Token buckets by key: ``rate`` units per second, holding at most ``burst``."""

    __slots__ = ("_buckets", "_clock", "burst", "rate")

    def __init__(
        self, rate: float, burst: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst > 0 else max(2 * rate, 1.0)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}

    def _bucket(self, key: str, now: float) -> list[float]:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= 100_000:
                self._prune(now)
            bucket = self._buckets[key] = [self.burst, now]
        else:
            level = bucket[0] + (now - bucket[1]) * self.rate
            bucket[0] = level if level < self.burst else self.burst
            bucket[1] = now
        return bucket

    def take(self, key: str, amount: float = 1.0) -> float:
        """Take ``amount`` if the bucket holds it (``0.0``), else the seconds until it will."""
        bucket = self._bucket(key, self._clock())
        if bucket[0] >= amount:
            bucket[0] -= amount
            return 0.0
        return (amount - bucket[0]) / self.rate

    def wait_time(self, key: str, amount: float = 1.0) -> float:
        """Seconds until ``take(key, amount)`` would succeed; takes nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        level = min(self.burst, bucket[0] + (self._clock() - bucket[1]) * self.rate)
        return 0.0 if level >= amount else (amount - level) / self.rate

    def charge(self, key: str, amount: float) -> float:
        """Take ``amount`` even into debt; the seconds until the debt is paid (``0.0``: none)."""
        bucket = self._bucket(key, self._clock())
        bucket[0] -= amount
        return 0.0 if bucket[0] >= 0 else -bucket[0] / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def prune(self) -> None:
        """Forget buckets that have refilled (they would start full anyway)."""
        self._prune(self._clock())

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, (level, stamp) in self._buckets.items()
            if level + (now - stamp) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= 100_000:
            self._buckets.clear()
