"""What the client, its producer, consumers and admin client share: ``async with`` around
``start()``/``close()``, and (for the producer and consumers) the client's circuit breaker,
tracing and metrics."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import TYPE_CHECKING

from millstream.kafka.circuit_breaker import CircuitBreaker
from millstream.kafka.config import ClientConfig
from millstream.kafka.metrics import ClientMetrics
from millstream.kafka.telemetry import StreamlineTracing, tracing_or_none

if TYPE_CHECKING:
    from typing import Self

__all__ = ["Lifecycle", "Part"]


class Lifecycle(abc.ABC):
    """``async with x`` starts ``x`` and closes it on the way out."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Part(Lifecycle):
    """A producer or consumer of a client: its settings and the client's shared helpers."""

    def __init__(
        self,
        client_config: ClientConfig,
        *,
        circuit_breaker: CircuitBreaker | None = None,
        telemetry: StreamlineTracing | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        self._client_config = client_config
        self._breaker = circuit_breaker
        self._tracing = tracing_or_none(telemetry)
        self._metrics = metrics if metrics is not None else ClientMetrics()
