"""The circuit breaker's states on a controlled clock (the outage test in ``test_failures``
drives it through a real broker)."""

from __future__ import annotations

import pytest

from millstream.kafka import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpen,
    CircuitState,
    ConnectionError,
    SerializationError,
    TimeoutError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_defaults() -> None:
    config = CircuitBreakerConfig()
    assert (config.failure_threshold, config.success_threshold) == (5, 2)
    assert (config.open_timeout_s, config.half_open_max_requests) == (30.0, 3)
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreakerConfig(failure_threshold=0)
    with pytest.raises(ValueError, match="success_threshold"):
        CircuitBreakerConfig(success_threshold=4, half_open_max_requests=3)


def test_opens_half_opens_and_closes() -> None:
    clock = Clock()
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        CircuitBreakerConfig(
            failure_threshold=3,
            success_threshold=2,
            open_timeout_s=10,
            half_open_max_requests=2,
            on_state_change=lambda old, new: changes.append((old, new)),
        ),
        clock=clock,
    )
    for _ in range(2):
        breaker.record_failure(ConnectionError("down"))
    breaker.record_success()  # a success resets the count while closed
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure(TimeoutError("slow"))
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    with pytest.raises(CircuitBreakerOpen) as caught:
        breaker.check()
    assert caught.value.retry_after_s == pytest.approx(10)
    clock.now += 10
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    assert breaker.allow()
    assert not breaker.allow()  # only half_open_max_requests trial calls
    breaker.record_success()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert changes == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_a_failed_trial_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, open_timeout_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure(OSError("reset"))
    assert breaker.state is CircuitState.OPEN
    clock.now += 4.9
    assert not breaker.allow()
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED


def test_only_signs_of_an_unwell_server_count() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1))
    breaker.record_failure(SerializationError("bad value"))
    breaker.record_failure(CircuitBreakerOpen())
    breaker.record_failure(ValueError("a bug"))
    assert breaker.state is CircuitState.CLOSED
    custom = CircuitBreaker(
        CircuitBreakerConfig(failure_threshold=1, retryable_exceptions=(ValueError,))
    )
    custom.record_failure(ConnectionError("down"))
    assert custom.state is CircuitState.CLOSED
    custom.record_failure(ValueError("counts here"))
    assert custom.state is CircuitState.OPEN


def test_config_or_keywords() -> None:
    assert CircuitBreaker(failure_threshold=2).config.failure_threshold == 2
    with pytest.raises(TypeError):
        CircuitBreaker(CircuitBreakerConfig(), failure_threshold=2)  # type: ignore[call-arg]
