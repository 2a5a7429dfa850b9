"""Kafka batches through ``SqliteStore`` alone (no Kafka door): produce, then read them back.

    .venv/bin/python benchmarks/store_produce.py [--partitions 6] [--records 1000] [--size 1024]
        [--in-flight 1] [--seconds 5] [--fsync always]

``--in-flight`` asyncio tasks per partition (a stream) produce record batches of ``--records``
records of ``--size`` bytes, each awaiting its acknowledgement, as a Kafka connection with that
many batches in flight per partition would (librdkafka pipelines many; 1 is the strictest).
Then every partition is read from the start with ``read_batches`` (1 MiB per call, as a
consumer's fetch would). Prints records/s and the CPU this process spent per record and per
MB, which on a shared machine is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from millstream.log import CreateRequest, SqliteStore, StreamConfig, encode_batch, parse_batch


def _batch(records: int, size: int) -> bytes:
    values = [b"v" * size] * records
    return encode_batch(0, values, [1_700_000_000_000] * records)


async def run(
    data_dir: Path,
    partitions: int,
    records: int,
    size: int,
    in_flight: int,
    seconds: float,
    fsync: str,
) -> None:
    store = SqliteStore(data_dir, fsync=fsync)  # type: ignore[arg-type]
    await store.start()
    paths = [f"bench:{p}" if p else "bench" for p in range(partitions)]
    for path in paths:
        await store.create(path, CreateRequest(StreamConfig("application/octet-stream")))
    batch = parse_batch(_batch(records, size))
    produced = 0
    deadline = time.monotonic() + seconds

    async def producer(path: str) -> None:
        nonlocal produced
        while time.monotonic() < deadline:
            await store.produce(path, batch)
            produced += records

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(producer(path) for path in paths for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    megabytes = produced * size / 1e6
    print(
        f"produce: {produced / wall:,.0f} records/s, {megabytes / wall:,.1f} MB/s; CPU "
        f"{cpu / produced * 1e6:.2f} µs/record, {cpu / megabytes * 1e3:.2f} ms/MB"
    )

    read = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        position = 0
        while True:
            result = await store.read_batches(path, position, max_bytes=1 << 20)
            if not result.batches:
                break
            read += result.next - position
            position = result.next
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    megabytes = read * size / 1e6
    print(
        f"read:    {read / wall:,.0f} records/s, {megabytes / wall:,.1f} MB/s; CPU "
        f"{cpu / read * 1e6:.2f} µs/record, {cpu / megabytes * 1e3:.2f} ms/MB"
    )
    print(f"store: {store.statistics()}")
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--in-flight", type=int, default=1, help="batches per partition")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fsync", default="always", choices=("always", "interval", "never"))
    parser.add_argument("--dir", type=Path, default=None, help="on a real disk (default: /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        asyncio.run(
            run(
                Path(scratch),
                args.partitions,
                args.records,
                args.size,
                args.in_flight,
                args.seconds,
                args.fsync,
            )
        )


if __name__ == "__main__":
    main()
