"""Durable appends/s through ``SqliteStore`` alone (no HTTP), from N concurrent asyncio tasks.

    .venv/bin/python benchmarks/store_append.py --writers 16 64 --seconds 5 [--fsync always]
        [--work-us 40]

Each writer appends one message (``--size`` bytes) and awaits the acknowledgement before the
next, like an HTTP client would; half the writers use idempotent-producer claims. ``--work-us``
burns that much CPU on the event loop before each append, standing in for the HTTP server's
work per request (~40 µs: millstream --memory serves ~24k appends/s on one loop), so requests
reach the store spread out in time as they do through HTTP. Also times catch-up reads of a
20k-message stream, on the event loop and in a worker thread.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from millstream.log import AppendRequest, CreateRequest, ProducerClaim, SqliteStore, StreamConfig
from millstream.log._sqlite import read_segments


def burn(microseconds: float) -> None:
    """Keep the CPU (and the event loop) busy for ``microseconds``."""
    until = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < until:
        pass


async def run_appends(
    data_dir: Path, writers: int, seconds: float, size: int, fsync: str, work_us: float
) -> None:
    store = SqliteStore(data_dir, fsync=fsync)  # type: ignore[arg-type]
    await store.start()
    path = f"bench-{writers}"
    await store.create(path, CreateRequest(StreamConfig("application/octet-stream")))
    payload = b"x" * size
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def writer(w: int) -> None:
        seq = 0
        while time.perf_counter() < deadline:
            if work_us:
                burn(work_us)
                await asyncio.sleep(0)  # let the other "requests" be handled in between
            claim = ProducerClaim(f"p{w}", 0, seq) if w % 2 else None
            await store.append(path, AppendRequest([payload], producer=claim))
            seq += 1
            counts[w] += 1

    before = store.statistics()
    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    after = store.statistics()
    total = sum(counts)
    batches = after["batches"] - before["batches"]
    syncs = after.get("wal_syncs", batches) - before.get("wal_syncs", 0) if fsync == "always" else 0
    print(
        f"fsync={fsync} writers={writers:3d} work={work_us:g}us: {total / elapsed:9.0f} appends/s "
        f"({total} in {elapsed:.2f}s, {batches} commits, {total / max(batches, 1):.1f} per commit"
        + (f", {syncs} WAL fsyncs" if syncs else "")
        + f"); process CPU {cpu / max(total, 1) * 1e6:.1f} µs/append beyond --work-us:"
        f" {(cpu / max(total, 1)) * 1e6 - work_us:.1f}"
    )
    await store.aclose()


async def run_reads(data_dir: Path, messages: int) -> None:
    store = SqliteStore(data_dir, fsync="never")
    await store.start()
    await store.create("catchup", CreateRequest(StreamConfig("application/json")))
    for start in range(0, messages, 1000):
        batch = [b'{"n":%d,"text":"hello world"}' % i for i in range(start, start + 1000)]
        await store.append("catchup", AppendRequest(batch))
    await store.aclose()
    store = SqliteStore(data_dir, fsync="never")  # reopened: nothing cached
    await store.start()
    info = await store.head("catchup")
    assert store._reader is not None
    for label, budget in (("1 MiB chunk", 1 << 20), ("all 20k", 1 << 30)):
        segments = [(info.stream_id, 0, messages)]
        t0 = time.perf_counter()
        for _ in range(20):
            on_loop = read_segments(store._reader, segments, budget)
        t1 = time.perf_counter()
        for _ in range(20):
            in_thread = await asyncio.to_thread(
                read_segments, store._thread_conn(), segments, budget
            )
        t2 = time.perf_counter()
        assert on_loop == in_thread
        print(
            f"read {label} ({len(on_loop)} msgs): on loop {(t1 - t0) / 20 * 1000:.2f} ms, "
            f"in thread {(t2 - t1) / 20 * 1000:.2f} ms"
        )
    small = [(info.stream_id, 100, 103)]
    t0 = time.perf_counter()
    for _ in range(2000):
        read_segments(store._reader, small, 1 << 20)
    t1 = time.perf_counter()
    for _ in range(2000):
        await asyncio.to_thread(read_segments, store._thread_conn(), small, 1 << 20)
    t2 = time.perf_counter()
    print(
        f"read 3 msgs: on loop {(t1 - t0) / 2000 * 1e6:.1f} µs, "
        f"in thread {(t2 - t1) / 2000 * 1e6:.1f} µs"
    )
    t0 = time.perf_counter()
    for _ in range(2000):
        await store.read("catchup", messages - 3)
    per_read = (time.perf_counter() - t0) / 2000 * 1e6
    print(f"store.read of the last 3 messages (from SQL, on the loop): {per_read:.1f} µs")
    await store.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--fsync", default="always", choices=["always", "interval", "never"])
    parser.add_argument("--reads", type=int, default=20_000, help="catch-up size (0: skip)")
    parser.add_argument("--work-us", type=float, default=0.0, help="CPU per append on the loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for writers in args.writers:
            await run_appends(
                Path(tmp) / f"w{writers}",
                writers,
                args.seconds,
                args.size,
                args.fsync,
                args.work_us,
            )
        if args.reads:
            await run_reads(Path(tmp) / "reads", args.reads)


if __name__ == "__main__":
    asyncio.run(main())
