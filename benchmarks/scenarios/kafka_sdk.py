"""The Kafka SDK (``millstream.kafka``) against raw aiokafka, side by side on the same broker.

Each scenario runs the same work through both clients in alternating rounds (aiokafka first,
then the SDK, ``rounds`` times) against one broker, so load on a shared machine hits both
alike; the figures are the median of the rounds. The SDK's overhead is reported two ways:
throughput (``overhead_pct``: how much more time the SDK took for the same records) and the
load generator's own CPU per record (``cpu_overhead_pct``), which the broker's share of a
busy machine does not blur. Producing uses ``acks="all"`` (durable on millstream), one
partition, no compression.

- ``sdk-send-*``: ``await producer.send(...)`` one record at a time (aiokafka:
  ``await producer.send_and_wait(...)``);
- ``sdk-batch-*``: ``await producer.send_batch(records)`` 1,000 at a time (aiokafka: ``send``
  each, then wait for all of them);
- ``sdk-poll-*``: read a prefilled topic from the start with ``poll`` (aiokafka ``getmany``);
- ``sdk-iter-*``: the same with ``async for``.

Consumers read every record's value, as an application does; connecting is not measured.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AkTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks._model import Context, Figure, Outcome, Scenario, ScenarioFailed, register
from millstream.kafka import (
    ConsumerConfig,
    ProducerConfig,
    ProducerRecord,
    StreamlineClient,
    TopicPartition,
)

__all__ = ["PROTOCOL"]

PROTOCOL = "kafka-sdk"
_RUN = os.urandom(4).hex()
_BATCH = 1000

# does the work, timing its measured part inside ``measured()``; returns the records handled
Round = Callable[[Callable[[], Any]], Awaitable[int]]


def _topic(name: str) -> str:
    return f"bench-{_RUN}-{name}"


def _payload(i: int, size: int) -> bytes:
    return f"m{i:010d}".encode().ljust(size, b".")


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


class _Clock:
    """Wall and CPU time of the enclosed blocks (one per round), also added to ``ctx.meter``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.wall = self.cpu = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        with self.ctx.meter.measure():
            yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


async def _measure(ctx: Context, rounds: int, raw: Round, sdk: Round) -> Outcome:
    """Alternate ``raw`` and ``sdk`` rounds; the medians of msg/s and of CPU per record."""
    rates: dict[str, list[float]] = {"aiokafka": [], "sdk": []}
    cpu: dict[str, list[float]] = {"aiokafka": [], "sdk": []}
    for _ in range(rounds):
        for name, work in (("aiokafka", raw), ("sdk", sdk)):
            clock = _Clock(ctx)
            handled = await work(clock)
            if handled <= 0 or clock.wall <= 0:
                raise ScenarioFailed(f"{name} handled no records")
            rates[name].append(handled / clock.wall)
            cpu[name].append(clock.cpu / handled * 1e6)
    raw_rate, sdk_rate = statistics.median(rates["aiokafka"]), statistics.median(rates["sdk"])
    raw_cpu, sdk_cpu = statistics.median(cpu["aiokafka"]), statistics.median(cpu["sdk"])
    return Outcome(
        values={
            "sdk_msgs_per_s": sdk_rate,
            "aiokafka_msgs_per_s": raw_rate,
            "overhead_pct": (raw_rate / sdk_rate - 1) * 100,
            "sdk_cpu_us": sdk_cpu,
            "aiokafka_cpu_us": raw_cpu,
            "cpu_overhead_pct": (sdk_cpu / raw_cpu - 1) * 100,
        },
        details={"rounds": rounds, "rates": rates, "cpu_us": cpu},
    )


# -- producing ------------------------------------------------------------------------------


async def _produce(ctx: Context, *, size: int, messages: int, rounds: int, batch: bool) -> Outcome:
    bootstrap = ctx.target
    topic = _topic(f"{'batch' if batch else 'send'}-{size}")
    await _create_topic(bootstrap, topic)
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    client = StreamlineClient(bootstrap, producer_config=ProducerConfig(acks="all"))
    await raw.start()
    await client.start()
    payloads = [_payload(i, size) for i in range(messages)]
    records = [ProducerRecord(topic, value) for value in payloads]
    last = [-1]

    def check(offset: int) -> None:
        if offset > last[0]:
            last[0] = offset
            ctx.tally.ok()
        else:
            ctx.tally.fail(f"offset {offset} not after {last[0]}")

    async def raw_loop(measured: Callable[[], Any]) -> int:
        with measured():
            for value in payloads:
                check((await raw.send_and_wait(topic, value)).offset)
        return messages

    async def sdk_loop(measured: Callable[[], Any]) -> int:
        producer = client.producer
        with measured():
            for value in payloads:
                check((await producer.send(topic, value)).offset)
        return messages

    async def raw_batches(measured: Callable[[], Any]) -> int:
        with measured():
            for start in range(0, messages, _BATCH):
                futures = [await raw.send(topic, v) for v in payloads[start : start + _BATCH]]
                for meta in await asyncio.gather(*futures):
                    check(meta.offset)
        return messages

    async def sdk_batches(measured: Callable[[], Any]) -> int:
        producer = client.producer
        with measured():
            for start in range(0, messages, _BATCH):
                for meta in await producer.send_batch(records[start : start + _BATCH]):
                    check(meta.offset)
        return messages

    try:
        if batch:
            return await _measure(ctx, rounds, raw_batches, sdk_batches)
        return await _measure(ctx, rounds, raw_loop, sdk_loop)
    finally:
        await raw.stop()
        await client.close()


# -- consuming ------------------------------------------------------------------------------


async def _consume(
    ctx: Context, *, size: int, messages: int, rounds: int, iterate: bool
) -> Outcome:
    bootstrap = ctx.target
    topic = _topic(f"{'iter' if iterate else 'poll'}-{size}")
    await _create_topic(bootstrap, topic)
    filler = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await filler.start()
    try:
        for start in range(0, messages, _BATCH):
            futures = [
                await filler.send(topic, _payload(i, size))
                for i in range(start, min(start + _BATCH, messages))
            ]
            await asyncio.gather(*futures)
    finally:
        await filler.stop()
    client = StreamlineClient(bootstrap, consumer_config=ConsumerConfig(max_poll_records=500))
    await client.start()
    last_value = _payload(messages - 1, size)

    def check(count: int, value: bytes | None) -> int:
        if count == messages and value == last_value:
            ctx.tally.ok(count)
        else:
            ctx.tally.fail(f"read {count} records ending {value!r:.40}")
        return count

    async def raw_consumer() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=500)
        await consumer.start()
        consumer.assign([AkTopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        return consumer

    async def raw_poll(measured: Callable[[], Any]) -> int:
        consumer = await raw_consumer()
        count, value = 0, None
        try:
            with measured():
                while count < messages:
                    for batch in (await consumer.getmany(timeout_ms=1000)).values():
                        for message in batch:
                            value = message.value
                        count += len(batch)
        finally:
            await consumer.stop()
        return check(count, value)

    async def raw_iter(measured: Callable[[], Any]) -> int:
        consumer = await raw_consumer()
        count, value = 0, None
        try:
            with measured():
                async for message in consumer:
                    count += 1
                    value = message.value
                    if count == messages:
                        break
        finally:
            await consumer.stop()
        return check(count, value)

    async def sdk_poll(measured: Callable[[], Any]) -> int:
        count, value = 0, None
        async with client.consumer() as consumer:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.seek_to_beginning()
            with measured():
                while count < messages:
                    records = await consumer.poll(timeout_ms=1000)
                    for record in records:
                        value = record.value
                    count += len(records)
        return check(count, value)

    async def sdk_iter(measured: Callable[[], Any]) -> int:
        count, value = 0, None
        async with client.consumer() as consumer:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.seek_to_beginning()
            with measured():
                async for record in consumer:
                    count += 1
                    value = record.value
                    if count == messages:
                        break
        return check(count, value)

    try:
        if iterate:
            return await _measure(ctx, rounds, raw_iter, sdk_iter)
        return await _measure(ctx, rounds, raw_poll, sdk_poll)
    finally:
        await client.close()


# -- registration ---------------------------------------------------------------------------


def _figures(what: str) -> tuple[Figure, ...]:
    return (
        Figure("sdk_msgs_per_s", f"{what}: SDK", "msg/s", True),
        Figure("aiokafka_msgs_per_s", f"{what}: aiokafka", "msg/s", True),
        Figure("overhead_pct", f"{what}: SDK time over aiokafka", "%", False),
        Figure("sdk_cpu_us", f"{what}: SDK CPU per record", "µs", False),
        Figure("aiokafka_cpu_us", f"{what}: aiokafka CPU per record", "µs", False),
        Figure("cpu_overhead_pct", f"{what}: SDK CPU over aiokafka", "%", False),
    )


def _register(
    name: str,
    title: str,
    run: Callable[..., Awaitable[Outcome]],
    kwargs: dict[str, Any],
    work: tuple[int, int, int],
    timeout: tuple[float, float, float],
) -> None:
    async def scenario(ctx: Context) -> Outcome:
        return await run(ctx, **kwargs, **ctx.params)

    smoke, quick, full = work
    register(
        Scenario(
            name=name,
            protocol=PROTOCOL,
            title=title,
            figures=_figures(title),
            run=scenario,
            params={
                "smoke": {"messages": smoke, "rounds": 1},
                "quick": {"messages": quick, "rounds": 3},
                "full": {"messages": full, "rounds": 5},
            },
            timeout=dict(zip(("smoke", "quick", "full"), timeout, strict=True)),
        )
    )


for _size, _label in ((100, "100 B"), (1024, "1 KiB")):
    _register(
        f"sdk-send-{_size}",
        f"await send, {_label}",
        _produce,
        {"size": _size, "batch": False},
        (20, 200, 1000),
        (60, 180, 600),
    )
    _register(
        f"sdk-batch-{_size}",
        f"send_batch, {_label}",
        _produce,
        {"size": _size, "batch": True},
        (200, 10_000, 50_000),
        (60, 180, 600),
    )
    _register(
        f"sdk-poll-{_size}",
        f"poll, {_label}",
        _consume,
        {"size": _size, "iterate": False},
        (200, 20_000, 100_000),
        (60, 180, 600),
    )
    _register(
        f"sdk-iter-{_size}",
        f"async for, {_label}",
        _consume,
        {"size": _size, "iterate": True},
        (200, 20_000, 100_000),
        (60, 180, 600),
    )
