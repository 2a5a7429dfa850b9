"""The sender of the non-blocking path as one generator, driven by a thread (kafka-python) in
``SentinelClient`` and by a task (aiokafka) in ``AsyncSentinelClient``.

The flow yields what to do next (``Connect``, ``Hand``, ``Flush``, ``Wait``, ``Close``) and
receives ``None`` or, after ``Connect``, the ``SentinelError`` that prevented it. Every
decision (when to reconnect, replay or spool, when to stop) is made here, once; the runners only
perform the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from ._config import SentinelConfig
from ._delivery import BATCH, Delivery
from ._errors import SentinelError
from ._track import encode

__all__ = [
    "Close",
    "Connect",
    "Flush",
    "Hand",
    "SenderAction",
    "Wait",
    "resolve_config",
    "sender_flow",
]

IDLE_WAIT = 0.05  # seconds the sender sleeps at most when idle (a wake-up ends it sooner)
MAX_IN_FLIGHT = 5000  # events handed to the Kafka producer and not yet acknowledged, at most


@dataclass(frozen=True, slots=True)
class Connect:
    """Create (and start) the Kafka producer; reply with the error if that failed."""


@dataclass(frozen=True, slots=True)
class Hand:
    """Give ``payloads`` to the producer, reporting each outcome to the ``Delivery``."""

    payloads: list[bytes]
    replayed: bool


@dataclass(frozen=True, slots=True)
class Flush:
    """Wait up to ``timeout`` seconds for everything handed over to be acked or failed."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep up to ``timeout`` seconds or until woken (new events, close)."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Close:
    """Close the producer within ``timeout`` seconds (unfinished sends fail and get spooled)."""

    timeout: float


SenderAction = Connect | Hand | Flush | Wait | Close


def sender_flow(
    delivery: Delivery, stop_at: list[float]
) -> Generator[SenderAction, SentinelError | None, None]:
    """Run until ``stop_at`` (a one-element box the client fills with a monotonic deadline on
    close) is set and the queue is drained, or the deadline passes."""
    config = delivery.config
    request_timeout = config.request_timeout_ms / 1000
    in_flight_cap = max(BATCH, min(config.queue_size, MAX_IN_FLIGHT))
    linger = min(IDLE_WAIT, max(0.001, config.linger_ms / 1000))
    idle = linger  # the next wait on an empty queue: linger while events come, then longer
    connected = False

    def stopping() -> bool:
        return bool(stop_at)

    def remaining() -> float:
        return max(0.0, stop_at[0] - time.monotonic()) if stop_at else request_timeout

    while True:
        if stopping() and (remaining() <= 0 or not delivery.queue):
            break
        if not connected:
            if not delivery.may_attempt():
                if stopping() and delivery.next_attempt >= stop_at[0]:
                    break  # no attempt left before the close deadline
                if not stopping():
                    delivery.spill_queue("the broker is unreachable")
                yield Wait(min(0.5, max(0.01, delivery.next_attempt - time.monotonic())))
                continue
            error = yield Connect()
            if error is not None:
                delivery.down(error)
                continue
            connected = True
            delivery.up()
        if not stopping() and (segment := delivery.claim_replay()) is not None:
            yield Hand(segment.records, replayed=True)
            yield Flush(request_timeout)
            segment.done()  # failures were spooled again by the delivery's callbacks
            continue
        if not delivery.connected and not delivery.may_attempt():
            delivery.spill_queue("the broker is unreachable")
            if stopping():
                break
            yield Wait(min(0.5, max(0.01, delivery.next_attempt - time.monotonic())))
            continue
        if delivery.in_flight >= in_flight_cap:
            # Acks are due: hand over no more, so the producer's own buffer stays small (its
            # records would otherwise expire there) and what waits stays in the bounded queue.
            yield Wait(0.005)
            continue
        batch = delivery.take()
        if not batch:
            if stopping():
                break
            yield Wait(idle)
            idle = min(IDLE_WAIT, idle * 2)
            continue
        idle = linger
        yield Hand([encode(item) for item in batch], replayed=False)
        if not delivery.connected:  # a probe: learn its outcome before sending more
            yield Flush(min(request_timeout, remaining()) if stopping() else request_timeout)
    if connected:
        yield Flush(remaining())
    delivery.spill_queue("the client is closing")
    if connected:
        yield Close(remaining())
    if delivery.spool is not None:
        delivery.spool.close()


def resolve_config(
    brokers: list[str] | None, config: SentinelConfig | None, kwargs: dict[str, Any]
) -> SentinelConfig:
    """Upstream's rule: ``config`` wins, then ``brokers`` plus keyword settings, then the
    environment (``SentinelConfig.from_env``)."""
    if config is not None:
        return config
    if brokers is not None:
        return SentinelConfig(brokers=brokers, **kwargs)
    return SentinelConfig.from_env(**kwargs)
