"""Produce and consume through a real broker: values of every kind, keys, headers, timestamps,
every compression, batches, client-side transactions, ``poll`` and ``async for``."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from millstream.kafka import (
    ClientConfig,
    ConsumerConfig,
    ProducerConfig,
    ProducerRecord,
    SerializationError,
    StreamlineClient,
    TopicPartition,
    json_deserializer,
    json_serializer,
    string_deserializer,
)
from millstream.kafka._fetch_hook import _HookedRecords

from .brokers import Broker
from .helpers import make_topic, read_all


async def test_values_keys_headers_and_timestamps_round_trip(
    client: StreamlineClient, name: str
) -> None:
    await make_topic(client, name)
    stamp = 1_700_000_000_123
    sent = [
        await client.produce(name, b"\x00raw\xff", key=b"k-bytes"),
        await client.produce(name, "text é", key="k-str", headers={"trace": b"t1", "s": "x"}),
        await client.produce(name, {"user": 1, "tags": ["a"]}, timestamp_ms=stamp),
        await client.produce(name, [1, 2.5, True, None]),
        await client.produce(name, None, key="tombstone"),
        await client.producer.send(name, 42, headers=[("dup", b"1"), ("dup", b"2")]),
    ]
    assert [m.offset for m in sent] == list(range(6))
    assert all(m.topic == name and m.partition == 0 for m in sent)
    assert sent[0].serialized_key_size == 7
    assert sent[0].serialized_value_size == 5
    assert sent[4].serialized_value_size == 0
    assert sent[2].timestamp_ms == stamp
    assert sent[2].timestamp == datetime.fromtimestamp(stamp / 1000)

    records = await read_all(client, name, 6)
    assert [r.value for r in records] == [
        b"\x00raw\xff",
        "text é".encode(),
        b'{"user":1,"tags":["a"]}',
        b"[1,2.5,true,null]",
        None,
        b"42",
    ]
    assert [r.key for r in records] == [b"k-bytes", b"k-str", None, None, b"tombstone", None]
    assert records[1].headers == {"trace": b"t1", "s": b"x"}
    assert records[5].headers == {"dup": b"2"}  # the last value of a repeated header
    assert records[0].headers == {}
    assert records[2].timestamp_ms == stamp
    assert records[2].timestamp == datetime.fromtimestamp(stamp / 1000)
    now = time.time() * 1000
    assert abs(records[0].timestamp_ms - now) < 120_000


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
async def test_each_compression_round_trips(broker: Broker, name: str, compression: str) -> None:
    values = [f"record {i} ".encode() * 20 for i in range(50)]
    async with StreamlineClient(
        broker.bootstrap,
        http_url=broker.http_url or "",
        producer_config=ProducerConfig(compression_type=compression, linger_ms=20),
    ) as client:
        await make_topic(client, name)
        records = [ProducerRecord(name, value, key=str(i)) for i, value in enumerate(values)]
        sent = await client.producer.send_batch(records)
        assert [m.offset for m in sent] == list(range(50))
        received = await read_all(client, name, 50)
    assert [r.value for r in received] == values
    assert [r.key for r in received] == [str(i).encode() for i in range(50)]


async def test_send_batch_spreads_keys_over_partitions_and_keeps_order(
    client: StreamlineClient, name: str
) -> None:
    await make_topic(client, name, partitions=3)
    records = [ProducerRecord(name, {"n": i}, key=f"key-{i % 5}") for i in range(60)]
    sent = await client.producer.send_batch(records)
    assert len(sent) == 60
    by_key: dict[str, set[int]] = {}
    for record, meta in zip(records, sent, strict=True):
        by_key.setdefault(record.key, set()).add(meta.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())  # a key keeps a partition
    assert len({m.partition for m in sent}) > 1
    received = await read_all(client, name, 60, partitions=3, value_deserializer=json_deserializer)
    for partition in range(3):
        numbers = [r.value["n"] for r in received if r.partition == partition]
        assert numbers == sorted(numbers)  # per-partition order is send order
    assert sorted(r.value["n"] for r in received) == list(range(60))


async def test_explicit_partition(client: StreamlineClient, name: str) -> None:
    await make_topic(client, name, partitions=2)
    meta = await client.produce(name, b"x", partition=1)
    assert meta.partition == 1
    record = ProducerRecord(name, b"y", partition=1)
    assert (await client.producer.send_record(record)).partition == 1


async def test_serializers_from_config_and_deserializers(broker: Broker, name: str) -> None:
    async with StreamlineClient(
        broker.bootstrap,
        http_url=broker.http_url or "",
        producer_config=ProducerConfig(
            value_serializer=json_serializer, key_serializer=lambda k: k.upper().encode()
        ),
        consumer_config=ConsumerConfig(
            value_deserializer=json_deserializer, key_deserializer=string_deserializer
        ),
    ) as client:
        await make_topic(client, name)
        await client.produce(name, "a string is JSON too", key="abc")
        [record] = await read_all(client, name, 1)
    assert record.value == "a string is JSON too"
    assert record.key == "ABC"


async def test_unserializable_values_raise_serialization_error(
    client: StreamlineClient, name: str
) -> None:
    with pytest.raises(SerializationError) as caught:
        await client.produce(name, object())
    assert caught.value.hint
    assert not caught.value.retryable
    with pytest.raises(SerializationError):
        await client.produce(name, b"x", headers={"h": 1})  # type: ignore[dict-item]
    with pytest.raises(SerializationError):
        await client.produce(name, b"x", headers=[("only-a-name",)])  # type: ignore[list-item]


async def test_bad_deserializer_raises_serialization_error(
    client: StreamlineClient, name: str
) -> None:
    await make_topic(client, name)
    await client.produce(name, b"\xff not json")
    async with client.consumer(value_deserializer=json_deserializer) as consumer:
        consumer.assign([TopicPartition(name, 0)])
        await consumer.seek_to_beginning()

        async def poll_until_failure() -> None:
            for _ in range(40):
                await consumer.poll(timeout_ms=500)

        with pytest.raises(SerializationError) as caught:
            await poll_until_failure()
    assert f"{name}[0]@0" in str(caught.value)


async def test_client_side_transaction_commits_all_or_aborts(
    client: StreamlineClient, name: str
) -> None:
    await make_topic(client, name)
    producer = client.producer
    await producer.begin_transaction()
    assert producer.in_transaction
    pending = await producer.send(name, b"dropped")
    assert pending.offset == -1
    assert pending.partition == -1
    await producer.abort_transaction()

    await producer.begin_transaction()
    await producer.send(name, b"one")
    await producer.send_record(ProducerRecord(name, "two", key="k"))
    await producer.send_batch([ProducerRecord(name, b"three")])
    assert await read_all(client, name, 0) == []  # nothing reaches the broker before commit
    committed = await producer.commit_transaction()
    assert not producer.in_transaction
    assert [m.offset for m in committed] == [0, 1, 2]
    assert [r.value for r in await read_all(client, name, 3)] == [b"one", b"two", b"three"]


async def test_async_for_and_poll_max_records(client: StreamlineClient, name: str) -> None:
    await make_topic(client, name)
    await client.producer.send_batch([ProducerRecord(name, f"m{i}") for i in range(10)])
    before = client.metrics.snapshot()
    async with client.consumer(auto_offset_reset="earliest", max_poll_records=4) as consumer:
        # the records are made by the SDK inside aiokafka's fetcher (_fetch_hook): if a new
        # aiokafka stops that, consuming still works (converted records) but this fails
        assert type(consumer._consumer._fetcher._records) is _HookedRecords  # type: ignore[union-attr]
        consumer.assign([TopicPartition(name, 0)])
        first = await consumer.poll(timeout_ms=5000)
        assert 1 <= len(first) <= 4
        capped = await consumer.poll(timeout_ms=5000, max_records=2)
        assert 1 <= len(capped) <= 2
        seen = [r.value for r in first + capped]
        async for record in consumer:
            seen.append(record.value)
            if len(seen) == 10:
                break
    assert seen == [f"m{i}".encode() for i in range(10)]
    after = client.metrics.snapshot()
    assert after.messages_consumed - before.messages_consumed == 10
    assert after.bytes_received - before.bytes_received == sum(map(len, seen))


async def test_async_for_ends_when_the_consumer_closes(client: StreamlineClient, name: str) -> None:
    await make_topic(client, name)
    consumer = client.consumer()
    await consumer.start()
    consumer.assign([TopicPartition(name, 0)])

    async def drain() -> int:
        return sum([1 async for _ in consumer])

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.3)
    await consumer.close()
    assert await asyncio.wait_for(task, 10) == 0


async def test_metrics_count_what_went_through(client: StreamlineClient, name: str) -> None:
    await make_topic(client, name)
    before = client.metrics.snapshot()
    await client.produce(name, b"12345", key=b"k")
    await client.producer.send_batch([ProducerRecord(name, b"ab"), ProducerRecord(name, b"c")])
    await read_all(client, name, 3)
    after = client.metrics.snapshot()
    assert after.messages_produced - before.messages_produced == 3
    assert after.bytes_sent - before.bytes_sent == 6 + 3
    assert after.messages_consumed - before.messages_consumed == 3
    assert after.bytes_received - before.bytes_received == 6 + 3  # a null key counts 0
    assert after.produce_latency_avg_ms > 0
    assert after.uptime_ms > before.uptime_ms


async def test_client_config_object_and_env(
    broker: Broker, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMLINE_BOOTSTRAP_SERVERS", broker.bootstrap)
    async with StreamlineClient() as client:  # bootstrap from the environment
        assert client.bootstrap_servers == broker.bootstrap
        assert client.is_connected
        await make_topic(client, name)
        await client.produce(name, b"via env")
    assert not client.is_connected
    config = ClientConfig(bootstrap_servers=broker.bootstrap, client_id="cfg-test")
    async with StreamlineClient(client_config=config) as client:
        assert (await read_all(client, name, 1))[0].value == b"via env"
