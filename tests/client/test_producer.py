"""Idempotent producers against both real servers: exactly-once, pipelining, epochs."""

from __future__ import annotations

import asyncio

import pytest

from millstream.client import (
    AsyncDurableStream,
    AsyncIdempotentProducer,
    DurableStream,
    IdempotentProducer,
    StaleEpochError,
    stream,
)


def read_all(url: str) -> list[object]:
    with stream(url, live=False) as res:
        return res.read_json()


async def test_pipelined_appends_arrive_once_in_order(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        producer = handle.producer("writer-1", max_in_flight=4)
        futures = []
        for i in range(2000):
            futures.append(producer.append({"i": i}))
            if i % 100 == 0:
                await asyncio.sleep(0)  # let batches leave while we keep appending
        await producer.flush()
        assert all(f.done() and not f.exception() for f in futures)
        await producer.close()
    assert [x["i"] for x in read_all(url)] == list(range(2000))  # type: ignore[index]


async def test_stale_epoch_is_fenced_and_auto_claim_takes_over(url: str) -> None:
    DurableStream.create(url, content_type="application/json")
    async with AsyncIdempotentProducer(url, "p", epoch=3) as newer:
        newer.append('"from epoch 3"')  # a str on a JSON stream is JSON text
        await newer.flush()
    zombie = AsyncIdempotentProducer(url, "p", epoch=1)
    zombie.append({"zombie": True})
    with pytest.raises(StaleEpochError) as info:
        await zombie.flush()
    assert info.value.current_epoch == 3
    assert info.value.hint
    await zombie.close()
    async with AsyncIdempotentProducer(url, "p", epoch=0, auto_claim=True) as fresh:
        fresh.append(b'"claimed"')
        fresh.append({"again": True})
        await fresh.flush()
        assert fresh.epoch == 4
    assert read_all(url) == ["from epoch 3", "claimed", {"again": True}]


async def test_restart_bumps_epoch(url: str) -> None:
    DurableStream.create(url, content_type="application/json")
    async with AsyncIdempotentProducer(url, "p") as producer:
        producer.append(1)
        await producer.restart()
        assert (producer.epoch, producer.next_seq) == (1, 0)
        producer.append(2)
        await producer.flush()
    assert read_all(url) == [1, 2]


def test_sync_producer_and_close_stream(url: str) -> None:
    DurableStream.create(url, content_type="text/plain")
    with IdempotentProducer(url, "sync-writer") as producer:
        futures = [producer.append(f"{i};") for i in range(300)]
        producer.flush()
        assert futures[-1].result(5).offset
        closed = producer.close_stream("end")
        assert closed.offset
    with stream(url) as res:
        assert res.read_text() == "".join(f"{i};" for i in range(300)) + "end"
        assert res.stream_closed
