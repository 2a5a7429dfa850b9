"""``RetryConfig``/``retry_async``/``with_retry``: what is retried, how long it waits, when it
gives up. Delays are measured around real sleeps, as lower bounds only."""

from __future__ import annotations

import asyncio
import time

import pytest

from millstream.kafka import (
    ConfigurationError,
    ConnectionError,
    RateLimitError,
    RetryConfig,
    TimeoutError,
    TopicError,
    retry_async,
    with_retry,
)


def test_defaults_and_validation() -> None:
    config = RetryConfig()
    assert (config.max_retries, config.initial_backoff_ms, config.max_backoff_ms) == (3, 100, 10000)
    assert config.backoff_multiplier == 2.0
    assert [config.backoff_ms(n) for n in range(3)] == [100, 200, 400]
    assert RetryConfig(initial_backoff_ms=4000).backoff_ms(5) == 10000  # capped
    for bad, field in (
        ({"max_retries": -1}, "max_retries"),
        ({"initial_backoff_ms": -1}, "initial_backoff_ms"),
        ({"max_backoff_ms": 10, "initial_backoff_ms": 20}, "max_backoff_ms"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
    ):
        with pytest.raises(ValueError, match=field):
            RetryConfig(**bad)  # type: ignore[arg-type]


class Flaky:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[float] = []

    async def __call__(self, value: int, *, plus: int = 0) -> int:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return value + plus


async def test_retries_retryable_errors_with_growing_backoff() -> None:
    flaky = Flaky(ConnectionError("down"), TimeoutError("slow"), OSError("reset"))
    config = RetryConfig(max_retries=3, initial_backoff_ms=20, backoff_multiplier=2.0)
    assert await retry_async(flaky, 1, plus=2, config=config) == 3
    gaps = [b - a for a, b in zip(flaky.calls, flaky.calls[1:], strict=False)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.019
    assert gaps[1] >= 0.039
    assert gaps[2] >= 0.079


async def test_any_retryable_streamline_error_is_retried_by_default() -> None:
    flaky = Flaky(TopicError("leader moving", retryable=True))
    assert await retry_async(flaky, 5, config=RetryConfig(initial_backoff_ms=1)) == 5


async def test_gives_up_after_max_retries_and_on_fatal_errors() -> None:
    flaky = Flaky(*(ConnectionError("down") for _ in range(5)))
    with pytest.raises(ConnectionError):
        await retry_async(flaky, 1, config=RetryConfig(max_retries=2, initial_backoff_ms=1))
    assert len(flaky.calls) == 3
    fatal = Flaky(ConfigurationError("bad name"))
    with pytest.raises(ConfigurationError):
        await retry_async(fatal, 1)
    assert len(fatal.calls) == 1


async def test_explicit_retryable_exceptions_replace_the_defaults() -> None:
    only_value_errors = RetryConfig(initial_backoff_ms=1, retryable_exceptions=[ValueError])
    assert await retry_async(Flaky(ValueError("x")), 2, config=only_value_errors) == 2
    flaky = Flaky(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await retry_async(flaky, 1, config=only_value_errors)


async def test_rate_limits_wait_at_least_retry_after() -> None:
    flaky = Flaky(RateLimitError(retry_after_ms=60))
    started = time.monotonic()
    assert await retry_async(flaky, 1, config=RetryConfig(initial_backoff_ms=1)) == 1
    assert time.monotonic() - started >= 0.059


async def test_cancellation_is_never_retried() -> None:
    flaky = Flaky(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await retry_async(flaky, 1)
    assert len(flaky.calls) == 1


async def test_with_retry_decorator_keeps_the_function() -> None:
    attempts: list[int] = []

    @with_retry(RetryConfig(max_retries=5, initial_backoff_ms=1))
    async def publish(n: int) -> int:
        """Docstring kept."""
        attempts.append(n)
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return n * 2

    assert await publish(21) == 42
    assert attempts == [21, 21, 21]
    assert publish.__doc__ == "Docstring kept."
    assert publish.__name__ == "publish"
