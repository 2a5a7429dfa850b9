"""Many requests at once on one client (``client_bench.py --concurrency``), side by side.

- ``live readers``: N ``astream`` long-poll readers on one ``AsyncDurableStream``'s client;
  once all have their first answer and a second has passed, one append: how long until each
  reader has it, and how many got it within ``DEADLINE`` seconds.
- ``reads``: N catch-up reads of a 10-message stream gathered on one handle's client.
- ``appends``: N appends with ``batching=False`` gathered on one handle (one POST each).

Clients: ``millstream`` (as it ships: ``millstream._httppool`` in front of httpx's pool),
``httpx-pool`` (the same client handed a plain ``httpx.AsyncClient`` with the limits it used
before, 100 connections / 20 kept alive: httpx's own pool queue) and ``official`` (the
``durable-streams`` package on its default ``httpx.AsyncClient``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import queue
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

import httpx

from millstream.client import AsyncDurableStream

DEADLINE = 60.0
MESSAGE = {"user": "u-42", "event": "click"}


class Client:
    """One client under test: how it opens a handle, reads and appends."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def handle(self, url: str, batching: bool = True) -> Any:
        if self.name == "official":
            from durable_streams import AsyncDurableStream as Official

            return Official(url, content_type="application/json", batching=batching)
        client = httpx.AsyncClient(
            timeout=30.0, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )
        return AsyncDurableStream(
            url,
            content_type="application/json",
            batching=batching,
            client=client if self.name == "httpx-pool" else None,
        )

    async def append(self, handle: Any, value: Any) -> None:
        await handle.append(json.dumps(value) if self.name == "official" else value)


async def _create(url: str, messages: int) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        for i in range(messages):
            await handle.append({**MESSAGE, "n": i})


async def live_readers(client: Client, url: str, readers: int) -> dict[str, Any]:
    await _create(url, 1)
    handle = await client.handle(url)
    opened = 0
    all_open = asyncio.Event()
    got: list[float] = []
    appended = asyncio.get_running_loop().create_future()

    async def reader() -> None:
        nonlocal opened
        live = "long-poll"
        async with handle.stream(offset="-1", live=live) as res:
            opened += 1
            if opened == readers:
                all_open.set()
            async for item in res.iter_json():
                if item.get("n") == "live":
                    got.append(time.perf_counter() - await appended)
                    return

    tasks = [asyncio.create_task(reader()) for _ in range(readers)]
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), DEADLINE)
    open_s = time.perf_counter() - started
    await asyncio.sleep(1.0)  # let the long-polls park
    writer = await client.handle(url, batching=False)
    sent = time.perf_counter()
    await client.append(writer, {**MESSAGE, "n": "live"})
    appended.set_result(sent)
    done, _ = await asyncio.wait(tasks, timeout=DEADLINE)
    failed = [t.exception() for t in done if t.exception() is not None]
    errors = len(failed)
    return {
        "opened": opened,
        "open_s": open_s,
        "delivered": len(got),
        "errors": errors,
        "p50_ms": statistics.median(got) * 1000 if got else None,
        "max_ms": max(got) * 1000 if got else None,
        "first_error": repr(failed[0])[:120] if failed else "",
    }


async def _gathered(
    count: int, one: Callable[[int], Awaitable[None]]
) -> tuple[int, list[Exception], float]:
    done = 0
    errors: list[Exception] = []

    async def run(i: int) -> None:
        nonlocal done
        try:
            await one(i)
            done += 1
        except Exception as exc:
            errors.append(exc)

    started = time.perf_counter()
    tasks = [asyncio.create_task(run(i)) for i in range(count)]
    await asyncio.wait(tasks, timeout=DEADLINE)
    return done, errors, time.perf_counter() - started


async def reads(client: Client, url: str, count: int) -> dict[str, Any]:
    await _create(url, 10)
    handle = await client.handle(url)

    async def one(_: int) -> None:
        async with handle.stream(live=False) as res:
            assert len(await res.read_json()) == 10

    done, errors, seconds = await _gathered(count, one)
    return _totals(done, errors, seconds)


async def appends(client: Client, url: str, count: int) -> dict[str, Any]:
    await _create(url, 0)
    handle = await client.handle(url, batching=False)

    async def one(i: int) -> None:
        await client.append(handle, {**MESSAGE, "n": i})

    done, errors, seconds = await _gathered(count, one)
    return _totals(done, errors, seconds)


def _totals(done: int, errors: list[Exception], seconds: float) -> dict[str, Any]:
    return {
        "done": done,
        "errors": len(errors),
        "seconds": seconds,
        "per_s": done / seconds,
        "first_error": repr(errors[0])[:120] if errors else "",
    }


def _row(name: str, result: dict[str, Any], total: int) -> str:
    error = f"\n{'':14s}first error: {result['first_error']}" if result["first_error"] else ""
    return _figures(name, result, total) + error


def _figures(name: str, result: dict[str, Any], total: int) -> str:
    if "per_s" in result:
        return (
            f"  {name:11s} {result['done']:>6,}/{total:,} done, {result['errors']:,} errors, "
            f"{result['seconds']:6.2f} s, {result['per_s']:>9,.0f}/s"
        )
    p50 = f"{result['p50_ms']:.1f}" if result["p50_ms"] is not None else "-"
    top = f"{result['max_ms']:.1f}" if result["max_ms"] is not None else "-"
    return (
        f"  {name:11s} {result['opened']:>5,}/{total:,} open in {result['open_s']:5.2f} s, "
        f"delivered to {result['delivered']:,}, {result['errors']:,} errors, "
        f"p50 {p50} ms, max {top} ms"
    )


SCENARIOS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "live_readers": live_readers,
    "reads": reads,
    "appends": appends,
}


def _child(scenario: str, client: str, url: str, count: int, results: Any) -> None:
    """One measurement in a process of its own: the result is sent at the deadline and the
    process exits without cleaning up (cancelling thousands of requests stuck in httpx's pool
    takes longer than the measurement)."""
    loop = asyncio.new_event_loop()
    results.put(loop.run_until_complete(SCENARIOS[scenario](Client(client), url, count)))
    results.close()
    results.join_thread()  # the result is in the pipe before the process ends
    os._exit(0)


def run(server: Callable[[], AbstractContextManager[Any]], args: argparse.Namespace) -> None:
    """Each measurement on a fresh server (``server()`` yields one with a ``url``), so what a
    collapsing client leaves behind (thousands of dead connections) never slows the next."""
    spawn = multiprocessing.get_context("spawn")
    plan = [
        (f"{args.readers:,} live readers on one client", "live_readers", args.readers),
        (f"{args.reads:,} gathered catch-up reads", "reads", args.reads),
        (f"{args.appends:,} gathered appends, batching=False", "appends", args.appends),
    ]
    for number, (title, scenario, count) in enumerate(plan):
        print(f"\n== {title} (deadline {DEADLINE:.0f} s)")
        for name in args.clients.split(","):
            with server() as process:
                url = f"{process.url}/v1/stream/conc-{number}-{name}"
                results = spawn.Queue()
                child = spawn.Process(target=_child, args=(scenario, name, url, count, results))
                child.start()
                try:
                    result = results.get(timeout=3 * DEADLINE)
                except queue.Empty:
                    print(f"  {name:11s} no result within {3 * DEADLINE:.0f} s", flush=True)
                else:
                    print(_row(name, result, count), flush=True)
                child.join(10)
                if child.is_alive():
                    child.kill()
                    child.join()
