"""Per-key rate limits: requests and tokens per minute, as a sliding-window counter.

The window is approximated from two fixed minutes (the current one counted exactly, the previous
one weighted by how much of it still lies inside the last 60 s), which costs one small record
per key. Tokens count what a request reserves at admission (prompt estimate plus its output
limit), as the big providers count ``max_tokens`` towards their token limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY_LIMITS_META", "RateDecision", "RateLimits", "RateWindow"]

WINDOW_SECONDS = 60.0
#: Where a key's own limits live in its token record's ``meta``: ``{"rpm": N, "tpm": M}``,
#: each optional (absent: the server's default; 0: no limit). ``millstream keys limits``.
KEY_LIMITS_META = "llm_rate_limits"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """``None`` disables a limit."""

    requests_per_minute: int | None = 100
    tokens_per_minute: int | None = None

    def for_key(self, meta: dict[str, Any]) -> RateLimits:
        """These limits with a key's own overrides (``KEY_LIMITS_META``) applied."""
        own = meta.get(KEY_LIMITS_META)
        if not isinstance(own, dict):
            return self
        rpm, tpm = own.get("rpm"), own.get("tpm")
        return RateLimits(
            self.requests_per_minute if not isinstance(rpm, int) else (rpm or None),
            self.tokens_per_minute if not isinstance(tpm, int) else (tpm or None),
        )


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until the request would fit (0 when allowed)
    headers: list[tuple[bytes, bytes]]
    which: str = ""  # "requests" or "tokens" when refused


@dataclass(slots=True)
class RateWindow:
    """One key's counters: the current minute's and the previous minute's."""

    minute: int = 0
    requests: int = 0
    tokens: int = 0
    prev_requests: int = 0
    prev_tokens: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RateWindow:
        return cls(**{k: int(data.get(k, 0)) for k in cls.__slots__})

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def roll(self, now: float) -> None:
        minute = int(now // WINDOW_SECONDS)
        if minute <= self.minute:  # earlier: a decision replayed after a conflict counts now
            return
        if minute == self.minute + 1:
            self.prev_requests, self.prev_tokens = self.requests, self.tokens
        else:
            self.prev_requests = self.prev_tokens = 0
        self.minute, self.requests, self.tokens = minute, 0, 0

    def check(self, limits: RateLimits, tokens: int, now: float) -> RateDecision:
        """Admit (and count) one request of ``tokens``, or say when it would fit."""
        self.roll(now)
        into = (now % WINDOW_SECONDS) / WINDOW_SECONDS
        weight = 1.0 - into
        reset = WINDOW_SECONDS - now % WINDOW_SECONDS
        headers: list[tuple[bytes, bytes]] = []
        refused = ""
        wait = 0.0
        for which, limit, used_now, used_prev, cost in (
            ("requests", limits.requests_per_minute, self.requests, self.prev_requests, 1),
            ("tokens", limits.tokens_per_minute, self.tokens, self.prev_tokens, tokens),
        ):
            if limit is None:
                continue
            used = used_prev * weight + used_now
            fits = used + cost <= limit
            remaining = max(0, math.floor(limit - used - (cost if fits else 0)))
            headers += [
                (f"x-ratelimit-limit-{which}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{which}".encode(), str(remaining).encode()),
                (f"x-ratelimit-reset-{which}".encode(), f"{math.ceil(reset)}s".encode()),
            ]
            if not fits and not refused:
                refused = which
                wait = self._wait(limit, used_now, used_prev, cost, now)
        if refused:
            return RateDecision(False, wait, headers, refused)
        self.requests += 1
        self.tokens += tokens
        return RateDecision(True, 0.0, headers)

    @staticmethod
    def _wait(limit: int, used_now: int, used_prev: int, cost: int, now: float) -> float:
        """Seconds until ``cost`` more fits: the previous minute fades out linearly, and once
        this minute is over it fades out in turn."""
        into = now % WINDOW_SECONDS
        if cost > limit:
            return WINDOW_SECONDS
        if used_now + cost <= limit:
            # used_prev * (1 - t / 60) + used_now + cost <= limit, for t seconds into the minute
            t = WINDOW_SECONDS * (1 - (limit - used_now - cost) / used_prev)
            return float(max(1, math.ceil(t - into)))
        t = WINDOW_SECONDS * (1 - (limit - cost) / used_now)
        return float(max(1, math.ceil(WINDOW_SECONDS - into + t)))
