"""Client throughput: small-message appends/s with batching, and catch-up JSON read speed
against raw HTTP GETs of the same data, on real servers (millstream --memory, Node reference).

    .venv/bin/python benchmarks/client_bench.py [--server millstream|node|both] [--messages N]
    .venv/bin/python benchmarks/client_bench.py --concurrency [--readers 1000] [--reads 10000]

``--concurrency`` measures many requests at once on one client, side by side: millstream's
client as it ships (its pool behind ``millstream._httppool``'s slot queue), the same client on
a plain ``httpx.AsyncClient`` (what it used before: 100 connections, httpx's own queue), and
the official ``durable-streams`` client (the ``bench`` extra installs it), against one
``millstream serve --memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import client_concurrency
from millstream.client import AsyncDurableStream, AsyncIdempotentProducer, stream
from servers import ServerProcess, millstream_server, reference_server

MESSAGE = {"user": "u-42", "event": "click", "n": 0}


async def appends_concurrent(url: str, total: int, workers: int = 512) -> float:
    """``workers`` coroutines each awaiting their appends one by one; batching merges them."""
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        per = total // workers

        async def work(w: int) -> None:
            for i in range(per):
                await handle.append({**MESSAGE, "n": w * per + i})

        started = time.perf_counter()
        await asyncio.gather(*(work(w) for w in range(workers)))
        return per * workers / (time.perf_counter() - started)


async def appends_nowait(url: str, total: int) -> float:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        started = time.perf_counter()
        futures = []
        for i in range(total):
            futures.append(handle.append_nowait({**MESSAGE, "n": i}))
            if i % 1000 == 999:
                await asyncio.sleep(0)
        await asyncio.gather(*futures)
        return total / (time.perf_counter() - started)


async def appends_producer(url: str, total: int) -> float:
    (await AsyncDurableStream.create(url, content_type="application/json")).__class__  # noqa: B018
    async with AsyncIdempotentProducer(url, "bench", content_type="application/json") as producer:
        started = time.perf_counter()
        for i in range(total):
            producer.append({**MESSAGE, "n": i})
            if i % 1000 == 999:
                await asyncio.sleep(0)
        await producer.flush()
        return total / (time.perf_counter() - started)


def raw_read(url: str) -> tuple[int, float]:
    """Catch-up with bare httpx GETs following Stream-Next-Offset: bytes only, no parsing."""
    size, offset = 0, "-1"
    with httpx.Client() as client:
        started = time.perf_counter()
        while True:
            response = client.get(url, params={"offset": offset})
            size += len(response.content)
            offset = response.headers["stream-next-offset"]
            if response.headers.get("stream-up-to-date") == "true":
                break
        return size, time.perf_counter() - started


def client_read(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    with stream(url, live=False) as res:
        items = res.read_json()
    return len(items), time.perf_counter() - started


def best_of(n: int, fn: Callable[[], tuple[int, float]]) -> tuple[int, float]:
    results = [fn() for _ in range(n)]
    return min(results, key=lambda r: r[1])


def bench(name: str, make: Callable[[], AbstractContextManager[ServerProcess]], total: int) -> None:
    with make() as server:
        base = f"{server.url}/v1/stream"
        print(f"\n== {name} ({server.url})")
        for label, run in [
            ("appends, 512 concurrent awaiting callers", appends_concurrent),
            ("appends, append_nowait", appends_nowait),
            ("appends, AsyncIdempotentProducer", appends_producer),
        ]:
            rate = asyncio.run(run(f"{base}/{label.split(',')[1].strip().split()[0]}", total))
            print(f"{label:45s} {rate:>10,.0f} msg/s")
        # Catch-up read of 20k messages written by the nowait run above? Use a fresh stream.
        read_url = f"{base}/read-20k"
        asyncio.run(_fill(read_url, 20_000))
        raw_bytes, raw_s = best_of(3, lambda: raw_read(read_url))
        count, client_s = best_of(3, lambda: client_read(read_url))
        assert count == 20_000
        print(f"catch-up read 20k msgs, raw GET             {raw_bytes / raw_s / 1e6:>10.1f} MB/s")
        print(
            f"catch-up read 20k msgs, read_json()         {raw_bytes / client_s / 1e6:>10.1f} MB/s"
            f"  ({client_s / raw_s:.2f}x raw time, {count / client_s:,.0f} msg/s)"
        )


async def _fill(url: str, count: int) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        await asyncio.gather(*(handle.append_nowait({**MESSAGE, "n": i}) for i in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["millstream", "node", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", action="store_true", help="the concurrency scenarios")
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--clients", default="millstream,httpx-pool,official")
    args = parser.parse_args()
    if args.concurrency:
        client_concurrency.run(lambda: millstream_server("--memory"), args)
        return
    if args.server in ("millstream", "both"):
        bench("millstream serve --memory", lambda: millstream_server("--memory"), args.messages)
    if args.server in ("node", "both"):
        bench("Node reference server", reference_server, args.messages)


if __name__ == "__main__":
    main()
