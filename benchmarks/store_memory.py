"""Resident memory of a ``SqliteStore`` after touching many streams once (issue 7: memory
follows active streams, not every stream ever touched).

    .venv/bin/python benchmarks/store_memory.py --streams 45000 [--keep-all]

Creates ``--streams`` streams and appends one message to each (256 at a time), then lets the
writer's housekeeping run and prints the process RSS before and after, and per stream.
``--keep-all`` disables eviction (the behaviour before it existed); run each case in its own
process, as this script does, so the numbers do not mix.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from millstream.log import AppendRequest, CreateRequest, SqliteStore, StreamConfig


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


async def run(data_dir: Path, streams: int, keep_all: bool) -> None:
    options: dict[str, Any] = {"fsync": "never"}
    if keep_all:
        options.update(max_cached_streams=10**9, idle_seconds=1e9)
    store = SqliteStore(data_dir, **options)
    await store.start()
    config = CreateRequest(StreamConfig("application/json"))
    await store.create("warm-up", config)
    await store.append("warm-up", AppendRequest([b"{}"]))
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()

    async def touch(i: int) -> None:
        path = f"rooms/{i:07d}"
        await store.create(path, config)
        await store.append(path, AppendRequest([b'{"hello":"world"}']))

    for first in range(0, streams, 256):
        await asyncio.gather(*(touch(i) for i in range(first, min(first + 256, streams))))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.5)  # the writer's housekeeping runs about once a second when idle
    await store.create("nudge", config)  # and after every batch
    await asyncio.sleep(0.2)
    gc.collect()
    after = rss_mib()
    stats = store.statistics()
    label = "keep every state" if keep_all else "evict idle states"
    print(
        f"{label:>18}: {streams} streams touched once in {elapsed:.1f}s; RSS {before:.1f} ->"
        f" {after:.1f} MiB (+{after - before:.1f} MiB, {(after - before) * 1024 / streams:.2f}"
        f" KiB/stream); states in memory {stats['streams_in_memory']},"
        f" tail caches {stats['tail_cache']['streams']}"
    )
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=45_000)
    parser.add_argument("--keep-all", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp), args.streams, args.keep_all))


if __name__ == "__main__":
    main()
