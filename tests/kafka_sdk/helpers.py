"""Small helpers shared by the Kafka SDK tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from millstream.kafka import ConsumerRecord, StreamlineClient, TopicConfig, TopicPartition

__all__ = ["make_topic", "read_all", "wait_for"]


async def make_topic(client: StreamlineClient, name: str, partitions: int = 1) -> str:
    await client.admin.create_topic(TopicConfig(name, num_partitions=partitions))
    return name


async def read_all(
    client: StreamlineClient,
    topic: str,
    count: int,
    *,
    partitions: int = 1,
    timeout: float = 20.0,
    exact: bool = True,
    **consumer_settings: object,
) -> list[ConsumerRecord]:
    """Exactly ``count`` records of ``topic`` from the beginning, by partition then offset
    (fails if fewer arrive within ``timeout`` or, when ``exact``, more are there)."""
    records: list[ConsumerRecord] = []
    async with client.consumer(**consumer_settings) as consumer:  # type: ignore[arg-type]
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            records.extend(await consumer.poll(timeout_ms=500))
        # anything beyond ``count`` would show up here
        records.extend(await consumer.poll(timeout_ms=200))
    assert len(records) == count if exact else len(records) >= count, (
        f"expected {count} records, got {len(records)}"
    )
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Poll an async condition until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
