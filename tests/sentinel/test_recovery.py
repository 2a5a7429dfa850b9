"""The Sentinel's recovery in-process, on one store: a clean stop (snapshot at close) and an
abrupt one (task cancelled mid-run, snapshot plus journal replay) both continue exactly as an
uninterrupted Sentinel would, and an unreadable snapshot does not stop it."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from millstream.log import AppendRequest, KvWrite, MemoryStore
from millstream.services.sentinel import SentinelService
from millstream.services.sentinel._progress import NAMESPACE, STATE_KEY, Progress

from .helpers import expected_anomalies
from .workload import generate


async def drain(service: SentinelService, total: int) -> None:
    for _ in range(2000):
        if service.progress.processed + service.progress.dead_letters >= total:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(service.progress)


async def anomalies(store: MemoryStore) -> list[str]:
    read = await store.read("llm-anomalies", 0, max_bytes=1 << 30)
    return [orjson.loads(p)["alert_id"] for p in read.payloads]


@pytest.mark.parametrize("stop", ["clean", "abrupt"])
async def test_restart_continues_exactly(stop: str) -> None:
    events = generate(calls_per_pair=1000).events
    wire = [e.to_json() for e in events]
    store = MemoryStore()
    await store.start()
    first = SentinelService(store, checkpoint_every=2_000, journal_limit=5, batch_size=300)
    await first.start()
    half = len(wire) // 2
    for i in range(0, half, 500):
        await store.append("llm-telemetry", AppendRequest(wire[i : min(i + 500, half)]))
    await drain(first, half)
    if stop == "clean":
        await first.aclose()
    else:
        assert first._task is not None
        first._task.cancel()  # no snapshot at close: the journal must be replayed
        with pytest.raises(asyncio.CancelledError):
            await first._task
    second = SentinelService(store, checkpoint_every=2_000, journal_limit=5, batch_size=300)
    await second.start()
    for i in range(half, len(wire), 500):
        await store.append("llm-telemetry", AppendRequest(wire[i : i + 500]))
    await drain(second, len(wire))
    await second.aclose()
    want = [str(a.alert_id) for a in expected_anomalies(events, "llm-telemetry")]
    assert await anomalies(store) == want
    await store.aclose()


async def test_unreadable_snapshot_starts_afresh() -> None:
    store = MemoryStore()
    await store.start()
    progress = Progress(positions={"llm-telemetry": 0}, checkpoint=99)  # no such snapshot
    await store.kv_write([KvWrite(NAMESPACE, STATE_KEY, progress.encode())])
    service = SentinelService(store)
    await service.start()
    events = generate(calls_per_pair=10).events
    await store.append("llm-telemetry", AppendRequest([e.to_json() for e in events]))
    await drain(service, len(events))
    assert (await service.health())["status"] == "ok"
    await service.aclose()
    await store.aclose()
