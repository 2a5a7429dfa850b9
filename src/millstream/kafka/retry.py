"""Retry an async call with exponential backoff: ``retry_async(fn, ...)`` or ``@with_retry()``.

By default a call is retried when it raises an error that says it may succeed later: a
``StreamlineError`` whose ``retryable`` is true (connection lost, timeout, leader moving,
throttled), or ``OSError``/``asyncio.TimeoutError`` from code outside the SDK. A
``RateLimitError`` waits at least its ``retry_after_ms``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from millstream.kafka.exceptions import (
    ConnectionError,
    RateLimitError,
    StreamlineError,
    TimeoutError,
)

__all__ = ["DEFAULT_RETRYABLE_EXCEPTIONS", "RetryConfig", "retry_async", "with_retry"]

logger = logging.getLogger("millstream.kafka")

P = ParamSpec("P")
T = TypeVar("T")

#: Retried whatever their ``retryable`` flag says (the upstream SDK's defaults).
DEFAULT_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    asyncio.TimeoutError,
)


class RetryConfig:
    """How often and how patiently to retry.

    Delays start at ``initial_backoff_ms`` and grow by ``backoff_multiplier`` up to
    ``max_backoff_ms``; at most ``max_retries`` retries follow the first attempt. With
    ``retryable_exceptions=None`` the defaults above apply, plus any ``StreamlineError``
    marked ``retryable``; given a list, exactly those types are retried.
    """

    def __init__(
        self,
        max_retries: int = 3,
        initial_backoff_ms: int = 100,
        max_backoff_ms: int = 10000,
        backoff_multiplier: float = 2.0,
        retryable_exceptions: Sequence[type[BaseException]] | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if initial_backoff_ms < 0:
            raise ValueError("initial_backoff_ms must be >= 0")
        if max_backoff_ms < initial_backoff_ms:
            raise ValueError("max_backoff_ms must be >= initial_backoff_ms")
        if backoff_multiplier < 1.0:
            raise ValueError("backoff_multiplier must be >= 1.0")
        self.max_retries = max_retries
        self.initial_backoff_ms = initial_backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.backoff_multiplier = backoff_multiplier
        self._explicit = retryable_exceptions is not None
        self.retryable_exceptions: tuple[type[BaseException], ...] = tuple(
            DEFAULT_RETRYABLE_EXCEPTIONS if retryable_exceptions is None else retryable_exceptions
        )

    def __repr__(self) -> str:
        return (
            f"RetryConfig(max_retries={self.max_retries}, "
            f"initial_backoff_ms={self.initial_backoff_ms}, "
            f"max_backoff_ms={self.max_backoff_ms}, "
            f"backoff_multiplier={self.backoff_multiplier})"
        )

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this configuration."""
        if isinstance(exc, self.retryable_exceptions):
            return True
        return not self._explicit and isinstance(exc, StreamlineError) and exc.retryable

    def backoff_ms(self, retry: int) -> float:
        """The delay before retry number ``retry`` (0-based)."""
        delay = self.initial_backoff_ms * self.backoff_multiplier**retry
        return min(delay, float(self.max_backoff_ms))


async def retry_async(
    func: Callable[..., Awaitable[T]],
    *args: Any,
    config: RetryConfig | None = None,
    **kwargs: Any,
) -> T:
    """``await func(*args, **kwargs)``, retried under ``config`` (defaults: 3 retries from
    100 ms, doubling). The last error is raised when retries run out or an error is not
    retryable."""
    cfg = config or RetryConfig()
    retry = 0
    while True:
        try:
            return await func(*args, **kwargs)
        except Exception as exc:
            if retry >= cfg.max_retries or not cfg.should_retry(exc):
                raise
            delay = cfg.backoff_ms(retry)
            if isinstance(exc, RateLimitError):
                delay = max(delay, float(exc.retry_after_ms))
            logger.warning(
                "attempt %d/%d failed: %s; retrying in %.0f ms",
                retry + 1,
                cfg.max_retries + 1,
                exc,
                delay,
            )
            retry += 1
            await asyncio.sleep(delay / 1000)


def with_retry(
    config: RetryConfig | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate an async function so every call goes through ``retry_async``::

    @with_retry(RetryConfig(max_retries=5, initial_backoff_ms=200))
    async def publish(event: dict) -> None:
        await client.produce("events", event)
    """

    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await retry_async(func, *args, config=config, **kwargs)

        return wrapper

    return decorate
