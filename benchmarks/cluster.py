"""Scale-out: 1, 2 and 3 millstream nodes on one PostgreSQL, next to one SQLite node, in one run.

    .venv/bin/python -m benchmarks.cluster [--seconds 5] [--writers 64] [--samples 200]

Starts a throwaway PostgreSQL (``tests/postgres.py``: initdb + pg_ctl, as ``nobody`` when
root), then for each setup starts the nodes (``millstream serve --store postgresql://...`` or
``--data-dir``), and measures with aiohttp:

- durable appends: ``--writers`` concurrent writers spread round-robin over the nodes, each
  appending 100-byte messages to its own stream and awaiting each answer: msg/s;
- append → live delivery: one SSE reader on the *last* node (another node than the writer's,
  when there are several) and one writer on the first node appending a timestamp every 10 ms:
  p50/p99 from the POST to the SSE event arriving (one clock: same machine).

Prints a table with each setup's ratio to the SQLite node. Figures on a shared machine are
noisy: quote them with the command and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from postgres import PostgresServer  # noqa: E402

from servers import ServerProcess, millstream_argv  # noqa: E402


async def appends(urls: list[str], writers: int, seconds: float) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for i in range(writers):
            async with session.put(
                f"{urls[i % len(urls)]}/v1/stream/w{i}", headers={"content-type": "text/plain"}
            ) as r:
                assert r.status in (200, 201), r.status
        body = b"x" * 100
        done = 0
        stop = time.monotonic() + seconds

        async def writer(i: int) -> None:
            nonlocal done
            url = f"{urls[i % len(urls)]}/v1/stream/w{i}"
            while time.monotonic() < stop:
                async with session.post(
                    url, data=body, headers={"content-type": "text/plain"}
                ) as r:
                    assert r.status == 204, r.status
                done += 1

        t0 = time.monotonic()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        return done / (time.monotonic() - t0)


async def delivery(urls: list[str], samples: int) -> tuple[float, float]:
    write_url, read_url = urls[0], urls[-1]
    path = f"/v1/stream/lat-{os.getpid()}-{time.monotonic_ns()}"
    text = {"content-type": "text/plain"}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        async with session.put(write_url + path, headers=text) as r:
            assert r.status == 201
        sent: dict[str, float] = {}
        ready = asyncio.Event()

        async def reader() -> None:
            params = {"offset": "-1", "live": "sse"}
            async with session.get(read_url + path, params=params, timeout=None) as r:
                kind = ""
                ready.set()
                async for raw in r.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "data":
                        now = time.perf_counter()
                        for token in line[5:].split("|"):
                            if token in sent:
                                latencies.append(now - sent.pop(token))
                        if len(latencies) >= samples:
                            return

        task = asyncio.ensure_future(reader())
        await ready.wait()
        await asyncio.sleep(0.3)
        for i in range(samples):
            token = f"{i}|"
            sent[str(i)] = time.perf_counter()
            async with session.post(write_url + path, data=token.encode(), headers=text) as r:
                assert r.status == 204
            await asyncio.sleep(0.01)
            if task.done():
                break
        await asyncio.wait_for(task, 30)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return p50, p99


def start_nodes(args: list[str], count: int) -> list[ServerProcess]:
    argv = millstream_argv(*args, "--no-kafka")
    return [ServerProcess(argv) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--samples", type=int, default=200)
    opts = parser.parse_args()
    pg = PostgresServer()
    rows: list[tuple[str, float, float, float]] = []
    started = time.monotonic()
    try:
        setups: list[tuple[str, list[str], int]] = []
        with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as work:
            setups.append(("sqlite, 1 node", ["--data-dir", str(Path(work) / "data")], 1))
            for count in (1, 2, 3):
                setups.append((f"postgresql, {count} node(s)", [], count))
            for name, args, count in setups:
                if not args:
                    args = ["--store", pg.database("bench")]
                nodes = start_nodes(args, count)
                try:
                    urls = [node.url for node in nodes]
                    rate = asyncio.run(appends(urls, opts.writers, opts.seconds))
                    p50, p99 = asyncio.run(delivery(urls, opts.samples))
                finally:
                    for node in nodes:
                        node.terminate()
                rows.append((name, rate, p50, p99))
                print(f"{name}: {rate:,.0f} msg/s, delivery p50 {p50:.2f} ms p99 {p99:.2f} ms",
                      flush=True)  # fmt: skip
    finally:
        pg.close()
    base = rows[0][1]
    load = os.getloadavg()
    print(f"\n### scale-out ({time.monotonic() - started:.0f} s, load avg {load[0]:.1f}, "
          f"{os.cpu_count()} cores)\n")  # fmt: skip
    print(f"Command: `python -m benchmarks.cluster --seconds {opts.seconds:g} --writers "
          f"{opts.writers} --samples {opts.samples}`\n")  # fmt: skip
    print("| setup | durable appends msg/s | ÷ sqlite node | delivery p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, p50, p99 in rows:
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}× | {p50:.2f} | {p99:.2f} |")
    version = subprocess.run(
        [str(pg.bindir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(f"\n{version}; delivery with several nodes is cross-node (writer on the first, "
          "reader on the last).")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
