"""aiokafka against a real ``millstream serve``: compressed batches, a consumer group with
commits, seek, and the long-poll waking a parked fetch."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
async def test_compressed_batches_round_trip(
    bootstrap: str, topic_name: str, compression: str | None
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type=compression, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        sends = [
            await producer.send(
                topic_name, key=b"k%d" % i, value=b"value %d" % i, headers=[("i", b"%d" % i)]
            )
            for i in range(50)
        ]
        metas = await asyncio.gather(*sends)
    finally:
        await producer.stop()
    assert [m.offset for m in metas] == list(range(50))
    consumer = AIOKafkaConsumer(
        topic_name, bootstrap_servers=bootstrap, group_id=f"g-{topic_name}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 50 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(records)
        assert [(r.offset, r.key, r.value, r.headers) for r in got] == [
            (i, b"k%d" % i, b"value %d" % i, (("i", b"%d" % i),)) for i in range(50)
        ]
        tp = TopicPartition(topic_name, 0)
        await consumer.commit({tp: 20})
        assert await consumer.committed(tp) == 20
        consumer.seek(tp, 45)
        again = (await consumer.getmany(tp, timeout_ms=5000))[tp]
        assert [r.offset for r in again] == list(range(45, 50))
    finally:
        await consumer.stop()


async def test_a_parked_fetch_wakes_on_produce(bootstrap: str, topic_name: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=10_000, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await producer.send_and_wait(topic_name, b"first")
        tp = TopicPartition(topic_name, 0)
        consumer.assign([tp])
        first = await consumer.getone()
        assert first.value == b"first"
        waiting = asyncio.ensure_future(consumer.getone())
        await asyncio.sleep(0.5)  # the consumer's fetch is parked on the broker now
        assert not waiting.done()
        sent = time.monotonic()
        await producer.send_and_wait(topic_name, b"second")
        second = await asyncio.wait_for(waiting, 5)
        assert second.value == b"second"
        assert time.monotonic() - sent < 5  # woken, not the 10 s max wait
    finally:
        await consumer.stop()
        await producer.stop()
