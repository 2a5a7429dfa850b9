"""``AsyncSentinelClient``: the asyncio client on aiokafka, the twin of ``SentinelClient``.

Non-blocking by default: ``await send()``/``track()`` validate and queue; a sender task driven
by ``_flow.sender_flow`` delivers, spools and replays. With ``blocking=True`` they wait for the
broker's ack (``send_and_wait``) and raise as the upstream SDK does.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import SentinelConfig
from ._delivery import Delivery, SentinelStats
from ._errors import ConnectionError, SendError, SentinelError, TimeoutError, ValidationError
from ._events import TelemetryEvent
from ._flow import Close, Connect, Flush, Hand, Wait, resolve_config, sender_flow
from ._instrument import Instrumentation
from ._sync import translate_kafka_error
from ._track import Queued, tracked

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["AsyncSentinelClient"]

log = logging.getLogger("millstream.telemetry")


class AsyncSentinelClient:
    """Send telemetry events to a Kafka topic (aiokafka).

    >>> async with AsyncSentinelClient(brokers=["localhost:9092"]) as client:  # doctest: +SKIP
    ...     await client.track(service="my-service", model="gpt-4", prompt="Hello",
    ...                        response="Hi there!", latency_ms=150.5, prompt_tokens=5,
    ...                        completion_tokens=10, cost_usd=0.001)
    """

    def __init__(
        self,
        brokers: list[str] | None = None,
        config: SentinelConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self._config = resolve_config(brokers, config, kwargs)
        self._closed = False
        self._started = False
        self._producer: AIOKafkaProducer | None = None
        self._blocking_sent = 0
        self._stop_at: list[float] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._delivery = None if self._config.blocking else Delivery(self._config)

    @property
    def config(self) -> SentinelConfig:
        return self._config

    async def start(self) -> None:
        """Start the producer (blocking mode: connect now, ``ConnectionError`` if no broker
        answers) or the background sender (non-blocking: it connects and retries by itself)."""
        if self._started:
            return
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        self._started = True
        if self._delivery is None:
            self._producer = await self._connect()
            return
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="sentinel-sender")

    async def send(self, event: TelemetryEvent, timeout: float | None = None) -> None:
        """Send one event; see ``SentinelClient.send``."""
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        if not isinstance(event, TelemetryEvent):
            raise ValidationError("send() takes a TelemetryEvent")
        if not self._started:
            await self.start()
        if self._delivery is not None:
            self._offer(event)
            return
        await self._send_and_wait(event, timeout)

    def send_nowait(self, event: TelemetryEvent) -> None:
        """Queue ``event`` without awaiting (non-blocking mode, client started)."""
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        if self._delivery is None or not self._started:
            raise SendError(
                "send_nowait needs a started, non-blocking client",
                hint="await client.start() first, or use 'async with client.instrument(...)'",
                retryable=False,
            )
        self._offer(event)

    def _offer(self, item: Queued) -> None:
        assert self._delivery is not None
        assert self._wake is not None
        if self._delivery.offer(item):
            self._wake.set()

    async def track(
        self,
        service: str,
        model: str,
        prompt: str,
        response: str,
        latency_ms: float,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float,
        finish_reason: str = "stop",
        trace_id: str | None = None,
        span_id: str | None = None,
        metadata: dict[str, str] | None = None,
        errors: list[str] | None = None,
        prompt_embedding: list[float] | None = None,
        response_embedding: list[float] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Build an event from these fields and ``send`` it. Non-blocking mode checks the fields
        and queues them, leaving the event's id and encoding to the sender task."""
        item = tracked(
            self._delivery is not None,
            service,
            model,
            prompt,
            response,
            latency_ms,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            finish_reason,
            trace_id,
            span_id,
            metadata,
            errors,
            prompt_embedding,
            response_embedding,
        )
        if self._delivery is None:
            assert isinstance(item, TelemetryEvent)
            await self.send(item, timeout=timeout)
            return
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        if not self._started:
            await self.start()
        self._offer(item)

    def instrument(self, **fields: Any) -> Instrumentation:
        """Time an LLM call and send its event (``async with`` or as a decorator)."""
        return Instrumentation(self, **fields)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event sent so far is acknowledged (or spooled)."""
        if self._closed or not self._started:
            return
        limit = self._config.request_timeout_ms / 1000 if timeout is None else timeout
        if self._delivery is None:
            assert self._producer is not None
            try:
                await asyncio.wait_for(self._producer.flush(), limit)
            except Exception as exc:
                raise translate_kafka_error(exc, "flush") from exc
            return
        deadline = time.monotonic() + limit
        assert self._wake is not None
        self._wake.set()
        while not self._delivery.idle():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"flush did not finish in {limit} s")
            await asyncio.sleep(0.005)

    def stats(self) -> SentinelStats:
        """Counts of the non-blocking path (see ``SentinelStats``)."""
        if self._delivery is not None:
            return self._delivery.stats()
        return SentinelStats(
            0, 0, self._blocking_sent, 0, 0, 0, 0, self._producer is not None, None
        )

    async def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within ``timeout`` seconds, spool the rest, stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        limit = self._config.close_timeout if timeout is None else timeout
        if self._task is not None:
            assert self._wake is not None
            self._stop_at.append(time.monotonic() + limit)
            self._wake.set()
            await self._task
            return
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), limit)
            except Exception as exc:  # closing must not raise
                log.error("error closing the Kafka producer: %s", exc)
            self._producer = None

    async def __aenter__(self) -> AsyncSentinelClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- aiokafka -------------------------------------------------------------------------

    async def _connect(self) -> AIOKafkaProducer:
        try:
            from aiokafka import AIOKafkaProducer
        except ImportError as exc:
            raise ConnectionError(
                "aiokafka is not installed",
                exc,
                hint="pip install 'millstream[telemetry]'",
                retryable=False,
            ) from exc
        try:
            producer = AIOKafkaProducer(**self._config.to_aiokafka_config())
        except Exception as exc:
            raise translate_kafka_error(exc, "creating the Kafka producer") from exc
        try:
            await producer.start()
        except Exception as exc:
            with contextlib.suppress(Exception):  # the original error is what matters
                await producer.stop()
            raise translate_kafka_error(
                exc, "connecting the Kafka producer", connecting=True
            ) from exc
        return producer

    async def _send_and_wait(self, event: TelemetryEvent, timeout: float | None) -> None:
        assert self._producer is not None
        limit = self._config.request_timeout_ms / 1000 if timeout is None else timeout
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(self._config.topic, value=event.to_json()), limit
            )
        except Exception as exc:
            raise translate_kafka_error(exc, f"sending event {event.event_id}") from exc
        self._blocking_sent += 1

    async def _run(self) -> None:
        delivery = self._delivery
        assert delivery is not None
        assert self._wake is not None
        flow = sender_flow(delivery, self._stop_at)
        reply: SentinelError | None = None
        producer: AIOKafkaProducer | None = None
        try:
            while True:
                action = flow.send(reply)
                reply = None
                if isinstance(action, Connect):
                    try:
                        producer = await self._connect()
                    except SentinelError as exc:
                        reply = exc
                elif isinstance(action, Hand):
                    assert producer is not None
                    await self._hand(producer, delivery, action)
                elif isinstance(action, Flush):
                    assert producer is not None
                    try:
                        await asyncio.wait_for(producer.flush(), action.timeout)
                    except Exception as exc:  # a timeout: outcomes still arrive by callback
                        log.debug("flush: %s", exc)
                elif isinstance(action, Wait):
                    with contextlib.suppress(builtins.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), action.timeout)
                    self._wake.clear()
                elif isinstance(action, Close):
                    assert producer is not None
                    try:
                        await asyncio.wait_for(producer.stop(), max(action.timeout, 0.1))
                    except Exception as exc:
                        log.error("error closing the Kafka producer: %s", exc)
        except StopIteration:
            return
        except Exception:  # the sender must never die silently: keep what is queued
            log.exception("telemetry sender failed; spooling what is queued")
            delivery.spill_queue("the sender failed")

    async def _hand(self, producer: AIOKafkaProducer, delivery: Delivery, action: Hand) -> None:
        payloads = action.payloads
        topic = self._config.topic
        replayed = action.replayed
        delivery.handed(len(payloads))
        for index, payload in enumerate(payloads):
            try:
                future = await producer.send(topic, value=payload)
            except Exception as exc:
                delivery.handed(index - len(payloads))
                delivery.not_handed(payloads[index:], translate_kafka_error(exc, "sending"))
                return

            def done(result: asyncio.Future[Any], payload: bytes = payload) -> None:
                if result.cancelled():
                    delivery.failed(payload, "cancelled")
                elif (error := result.exception()) is not None:
                    delivery.failed(payload, error)
                else:
                    delivery.acked(replayed=replayed)

            future.add_done_callback(done)
