"""``SentinelClient``: the synchronous client on kafka-python 3.

Non-blocking by default: ``send``/``track`` validate and queue, and a sender thread (driven by
``_flow.sender_flow``) delivers, spools and replays. With ``blocking=True`` they wait for the
broker's ack and raise as the upstream SDK does.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import socket
import threading
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._config import SentinelConfig
from ._delivery import Delivery, SentinelStats
from ._errors import (
    ConfigurationError,
    ConnectionError,
    SendError,
    SentinelError,
    TimeoutError,
    ValidationError,
)
from ._events import TelemetryEvent
from ._flow import Close, Connect, Flush, Hand, Wait, resolve_config, sender_flow
from ._instrument import Instrumentation
from ._track import tracked

if TYPE_CHECKING:
    from kafka import KafkaProducer

__all__ = ["SentinelClient", "translate_kafka_error"]

log = logging.getLogger("millstream.telemetry")

CONNECT_TIMEOUT_MS = 5000  # per attempt of the background sender; it retries with backoff


def translate_kafka_error(
    exc: BaseException, action: str, *, connecting: bool = False
) -> SentinelError:
    """The SDK error for a kafka-python or aiokafka exception (matched by class name, so
    neither library needs importing). While ``connecting``, a timeout means no broker
    answered: ``ConnectionError``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, SentinelError):
        return exc
    timeout = names & {"KafkaTimeoutError", "TimeoutError", "RequestTimedOutError"}
    if timeout and connecting:
        return ConnectionError(f"{action} failed: no broker answered in time", exc)
    if timeout:
        return TimeoutError(f"{action} timed out", exc)
    if names & {"NoBrokersAvailable", "KafkaConnectionError", "NodeNotReadyError"}:
        return ConnectionError(f"{action} failed: no broker reachable", exc)
    if names & {"KafkaConfigurationError", "UnsupportedCodecError"} or isinstance(
        exc, ValueError | TypeError | AssertionError
    ):
        return ConfigurationError(
            f"{action} failed: the Kafka client refused the settings: {exc}",
            exc,
            hint="check SentinelConfig and additional_config",
        )
    if names & {"AuthenticationFailedError", "SaslAuthenticationFailedError"}:
        return ConnectionError(
            f"{action} failed: authentication refused",
            exc,
            hint="check sasl_mechanism, sasl_username and sasl_password",
            retryable=False,
        )
    return SendError(f"{action} failed: {exc}", exc)


def _reachable(brokers: list[str], timeout: float) -> bool:
    """True when a TCP connection to any of ``brokers`` (``host:port``) succeeds."""
    for broker in brokers:
        host, _, port = broker.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def _close_at_exit(ref: weakref.ref[SentinelClient]) -> None:
    client = ref()
    if client is not None:
        client.close()


class SentinelClient:
    """Send telemetry events to a Kafka topic (kafka-python).

    >>> client = SentinelClient(brokers=["localhost:9092"])  # doctest: +SKIP
    >>> client.track(service="my-service", model="gpt-4", prompt="Hello",
    ...              response="Hi there!", latency_ms=150.5, prompt_tokens=5,
    ...              completion_tokens=10, cost_usd=0.001)  # doctest: +SKIP
    >>> client.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        brokers: list[str] | None = None,
        config: SentinelConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self._config = resolve_config(brokers, config, kwargs)
        self._closed = False
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()
        self._blocking_sent = 0
        self._stop_at: list[float] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._delivery: Delivery | None = None
        if not self._config.blocking:
            self._delivery = Delivery(self._config)
            self._thread = threading.Thread(target=self._run, name="sentinel-sender", daemon=True)
            self._thread.start()
        self._atexit = _close_at_exit
        atexit.register(self._atexit, weakref.ref(self))

    @property
    def config(self) -> SentinelConfig:
        return self._config

    # -- sending ------------------------------------------------------------------------

    def send(self, event: TelemetryEvent, timeout: float | None = None) -> None:
        """Send one event. Non-blocking mode: queue it and return (``timeout`` unused).
        Blocking mode: wait for the ack up to ``timeout`` seconds (default the request
        timeout); raises ``SendError``/``TimeoutError``/``ConnectionError``."""
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        if not isinstance(event, TelemetryEvent):
            raise ValidationError("send() takes a TelemetryEvent")
        if self._delivery is not None:
            if self._delivery.offer(event):
                self._wake.set()
            return
        self._send_and_wait(event, timeout)

    def send_nowait(self, event: TelemetryEvent) -> None:
        """``send`` for callers that must not wait: the same as ``send`` here (it waits only in
        blocking mode, which the caller chose)."""
        self.send(event)

    def track(
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
        and queues them, leaving the event's id and encoding to the sender thread."""
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
            self.send(item, timeout=timeout)
            return
        if self._closed:
            raise SendError("Client is closed", retryable=False)
        if self._delivery.offer(item):
            self._wake.set()

    def instrument(self, **fields: Any) -> Instrumentation:
        """Time an LLM call and send its event: a context manager or a decorator; see
        ``millstream.telemetry.Instrumentation``."""
        return Instrumentation(self, **fields)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event sent so far is acknowledged (or, non-blocking, spooled);
        ``TimeoutError`` after ``timeout`` seconds (default the request timeout)."""
        if self._closed:
            return
        limit = self._config.request_timeout_ms / 1000 if timeout is None else timeout
        if self._delivery is None:
            if self._producer is not None:
                try:
                    self._producer.flush(timeout=limit)
                except Exception as exc:
                    raise translate_kafka_error(exc, "flush") from exc
            return
        deadline = time.monotonic() + limit
        self._wake.set()
        while not self._delivery.idle():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"flush did not finish in {limit} s")
            time.sleep(0.005)

    def stats(self) -> SentinelStats:
        """Counts of the non-blocking path: queued, in flight, sent, spooled, dropped, ..."""
        if self._delivery is not None:
            return self._delivery.stats()
        return SentinelStats(
            0, 0, self._blocking_sent, 0, 0, 0, 0, self._producer is not None, None
        )

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued within ``timeout`` seconds (default ``close_timeout``), spool
        the rest, and release the producer. Idempotent; also runs at interpreter exit."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        limit = self._config.close_timeout if timeout is None else timeout
        if self._thread is not None:
            self._stop_at.append(time.monotonic() + limit)
            self._wake.set()
            self._thread.join(limit + self._config.request_timeout_ms / 1000 + 5)
            return
        if self._producer is not None:
            try:
                self._producer.flush(timeout=limit)
                self._producer.close(timeout=limit)
            except Exception as exc:  # closing must not raise
                log.error("error closing the Kafka producer: %s", exc)
            self._producer = None

    def __enter__(self) -> SentinelClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- kafka-python ---------------------------------------------------------------------

    def _connect(self, *, background: bool) -> KafkaProducer:
        try:
            from kafka import KafkaProducer
        except ImportError as exc:
            raise ConnectionError(
                "kafka-python is not installed",
                exc,
                hint="pip install 'millstream[telemetry]'",
                retryable=False,
            ) from exc
        if background and not _reachable(self._config.brokers, CONNECT_TIMEOUT_MS / 1000):
            # Checked first: each failed KafkaProducer() leaves sockets for the garbage
            # collector (kafka-python 3.0), and a down broker means one attempt per backoff.
            raise ConnectionError(f"no broker reachable at {', '.join(self._config.brokers)}")
        settings = self._config.to_kafka_config()
        if background:
            settings["bootstrap_timeout_ms"] = min(
                CONNECT_TIMEOUT_MS, settings["bootstrap_timeout_ms"]
            )
        # kafka-python does not close its network client when the producer's constructor fails
        # (no broker, TLS refused): keep a handle on it to close it ourselves.
        created: list[Any] = []
        client_class = settings.get("kafka_client") or KafkaProducer.DEFAULT_CONFIG["kafka_client"]

        def make_client(**options: Any) -> Any:
            created.append(client_class(**options))
            return created[-1]

        settings["kafka_client"] = make_client
        try:
            return KafkaProducer(**settings)
        except Exception as exc:
            for client in created:
                with contextlib.suppress(Exception):
                    client.close()
            raise translate_kafka_error(
                exc, "creating the Kafka producer", connecting=True
            ) from exc

    def _send_and_wait(self, event: TelemetryEvent, timeout: float | None) -> None:
        with self._producer_lock:
            if self._producer is None:
                self._producer = self._connect(background=False)
            producer = self._producer
        limit = self._config.request_timeout_ms / 1000 if timeout is None else timeout
        try:
            producer.send(self._config.topic, value=event.to_json()).get(timeout=limit)
        except Exception as exc:
            raise translate_kafka_error(exc, f"sending event {event.event_id}") from exc
        self._blocking_sent += 1

    def _run(self) -> None:
        delivery = self._delivery
        assert delivery is not None
        flow = sender_flow(delivery, self._stop_at)
        reply: SentinelError | None = None
        producer: KafkaProducer | None = None
        try:
            while True:
                action = flow.send(reply)
                reply = None
                if isinstance(action, Connect):
                    try:
                        producer = self._connect(background=True)
                    except SentinelError as exc:
                        reply = exc
                elif isinstance(action, Hand):
                    assert producer is not None
                    self._hand(producer, delivery, action)
                elif isinstance(action, Flush):
                    assert producer is not None
                    try:
                        producer.flush(timeout=action.timeout)
                    except Exception as exc:  # a timeout: outcomes still arrive by callback
                        log.debug("flush: %s", exc)
                elif isinstance(action, Wait):
                    self._wake.wait(action.timeout)
                    self._wake.clear()
                elif isinstance(action, Close):
                    assert producer is not None
                    try:
                        producer.close(timeout=action.timeout)
                    except Exception as exc:
                        log.error("error closing the Kafka producer: %s", exc)
        except StopIteration:
            return
        except Exception:  # the sender must never die silently: keep what is queued
            log.exception("telemetry sender failed; spooling what is queued")
            delivery.spill_queue("the sender failed")

    def _hand(self, producer: KafkaProducer, delivery: Delivery, action: Hand) -> None:
        payloads = action.payloads
        topic = self._config.topic
        on_ack = self._on_replay_ack if action.replayed else self._on_ack
        delivery.handed(len(payloads))
        for index, payload in enumerate(payloads):
            try:
                future = producer.send(topic, value=payload)
            except Exception as exc:
                delivery.handed(index - len(payloads))
                delivery.not_handed(payloads[index:], translate_kafka_error(exc, "sending"))
                return
            future.add_callback(on_ack)
            future.add_errback(delivery.failed, payload)

    def _on_ack(self, _metadata: object) -> None:
        assert self._delivery is not None
        self._delivery.acked(replayed=False)

    def _on_replay_ack(self, _metadata: object) -> None:
        assert self._delivery is not None
        self._delivery.acked(replayed=True)
