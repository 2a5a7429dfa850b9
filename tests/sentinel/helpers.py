"""Driving a real ``millstream serve`` for the Sentinel's tests: producing telemetry over the
Kafka door, waiting on ``/health``, reading the anomalies back over every door."""

from __future__ import annotations

import time
from typing import Any

import httpx
from confluent_kafka import Producer

from millstream import stream
from millstream.services.sentinel import Engine
from millstream.telemetry import AnomalyEvent, TelemetryEvent

from .workload import Workload


def sentinel_health(url: str) -> dict[str, Any]:
    health: dict[str, Any] = httpx.get(f"{url}/health", timeout=10).json()["services"]["sentinel"]
    return health


def wait_processed(url: str, count: int, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the Sentinel has looked at ``count`` events (valid or dead-lettered)."""
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            health = sentinel_health(url)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if health["processed"] + health["dead_letters"] >= count and health["lag"] == 0:
            return health
        time.sleep(0.05)
    raise AssertionError(f"the Sentinel did not catch up: {health}")


def produce(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    """Send raw values with librdkafka (acks=all), fast, and wait for every ack."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    failures: list[Any] = []

    def report(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    for payload in payloads:
        while True:
            try:
                producer.produce(topic, payload, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures[:3]


def read_all(url: str, path: str) -> list[Any]:
    """Every JSON value of a stream, by HTTP catch-up (the millstream client)."""
    with stream(f"{url}/v1/stream/{path}", offset="-1", live=False) as response:
        return response.read_json()


def expected_anomalies(events: list[TelemetryEvent], source: str) -> list[AnomalyEvent]:
    """What an uninterrupted Sentinel emits for ``events`` at positions 0.. of ``source``."""
    engine = Engine()
    out: list[AnomalyEvent] = []
    for position, event in enumerate(events):
        out.extend(engine.process(event, source=source, position=position).alerts)
    return out


def wire(workload: Workload) -> list[bytes]:
    return [event.to_json() for event in workload.events]
