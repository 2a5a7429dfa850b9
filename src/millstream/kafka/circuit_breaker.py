"""A circuit breaker: after repeated failures, refuse calls at once for a while instead of
letting every caller wait out its own timeout against a server that is down.

    CLOSED ──failure_threshold consecutive failures──▶ OPEN
    OPEN ──open_timeout_s elapsed──▶ HALF_OPEN (up to half_open_max_requests trial calls)
    HALF_OPEN ──success_threshold successes──▶ CLOSED;  any failure ──▶ OPEN

Only failures that say the server is unwell count (``CircuitBreakerConfig.counts_as_failure``).
With ``ClientConfig(circuit_breaker=CircuitBreakerConfig(...))``
the client's producer and consumers share one breaker.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from millstream.kafka.exceptions import StreamlineError

__all__ = ["CircuitBreaker", "CircuitBreakerConfig", "CircuitBreakerOpen", "CircuitState"]

logger = logging.getLogger("millstream.kafka")


class CircuitState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass
class CircuitBreakerConfig:
    """``failure_threshold`` consecutive failures open the circuit for ``open_timeout_s``;
    then ``half_open_max_requests`` trial calls are let through, and ``success_threshold``
    successes among them close it. ``on_state_change(old, new)`` is called on every change.
    ``retryable_exceptions``: the failures that count; by default retryable SDK errors and
    ``OSError`` (a bad record or a missing topic says nothing about the server's health)."""

    failure_threshold: int = 5
    success_threshold: int = 2
    open_timeout_s: float = 30.0
    half_open_max_requests: int = 3
    retryable_exceptions: tuple[type[BaseException], ...] | None = None
    on_state_change: Callable[[CircuitState, CircuitState], None] | None = None

    def __post_init__(self) -> None:
        for name in ("failure_threshold", "success_threshold", "half_open_max_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.open_timeout_s < 0:
            raise ValueError("open_timeout_s must be >= 0")
        if self.success_threshold > self.half_open_max_requests:
            raise ValueError("success_threshold cannot exceed half_open_max_requests")

    def counts_as_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the server is unwell."""
        if isinstance(exc, CircuitBreakerOpen):
            return False
        if self.retryable_exceptions is not None:
            return isinstance(exc, self.retryable_exceptions)
        if isinstance(exc, StreamlineError):
            return exc.retryable
        return isinstance(exc, OSError)


class CircuitBreakerOpen(StreamlineError):
    """The circuit is open: the call was refused without trying the server."""

    default_hint = (
        "The server failed repeatedly; calls resume by themselves after the cooldown "
        "(CircuitBreakerConfig.open_timeout_s). Check the server's health"
    )
    default_retryable = True

    def __init__(self, message: str = "", *, retry_after_s: float = 0.0) -> None:
        super().__init__(
            message or f"Circuit breaker is open; retry in {retry_after_s:.1f} s",
        )
        self.retry_after_s = retry_after_s


class CircuitBreaker:
    """Counts outcomes and decides whether the next call may go ahead.

    Use it around your own calls too::

        breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=3))
        breaker.check()                # raises CircuitBreakerOpen while open
        try:
            await client.produce("events", b"x")
        except StreamlineError as exc:
            breaker.record_failure(exc)
            raise
        breaker.record_success()
    """

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **settings: object,
    ) -> None:
        if config is None:
            config = CircuitBreakerConfig(**settings)  # type: ignore[arg-type]
        elif settings:
            raise TypeError("pass either a CircuitBreakerConfig or keyword settings")
        self.config = config
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._opened_at = 0.0

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose cooldown has passed turns half-open."""
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self.config.open_timeout_s
        ):
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    @property
    def counts(self) -> tuple[int, int]:
        """(consecutive failures, half-open successes)."""
        return self._failures, self._successes

    def allow(self) -> bool:
        """True if a call may go ahead now (a half-open circuit lets a few trials through)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and self._trials < self.config.half_open_max_requests:
            self._trials += 1
            return True
        return False

    def check(self) -> None:
        """``allow()``, raising ``CircuitBreakerOpen`` instead of returning False."""
        if not self.allow():
            remaining = self.config.open_timeout_s - (self._clock() - self._opened_at)
            raise CircuitBreakerOpen(retry_after_s=max(remaining, 0.0))

    def record_success(self) -> None:
        state = self._state
        if state is CircuitState.CLOSED:
            self._failures = 0
        elif state is CircuitState.HALF_OPEN:
            self._successes += 1
            if self._successes >= self.config.success_threshold:
                self._transition(CircuitState.CLOSED)

    def record_failure(self, exc: BaseException | None = None) -> None:
        """Count a failure; with ``exc``, only if it says the server is unwell."""
        if exc is not None and not self.config.counts_as_failure(exc):
            return
        state = self._state
        if state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.config.failure_threshold:
                self._transition(CircuitState.OPEN)
        elif state is CircuitState.HALF_OPEN:
            self._transition(CircuitState.OPEN)

    def reset(self) -> None:
        """Close the circuit by hand."""
        self._transition(CircuitState.CLOSED)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._failures = self._successes = self._trials = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        logger.info("circuit breaker %s -> %s", old.value, new.value)
        if self.config.on_state_change is not None:
            self.config.on_state_change(old, new)
