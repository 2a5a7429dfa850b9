"""Durable mode over real uvicorn: the generator runs once per key, into a log; readers stream
it with offsets as ids, resume from ``Last-Event-ID``, attach to a running generation, and get
the batch answer from the log. The log is a ``MemoryStore``, a ``SqliteStore``, or a real
Durable Streams server (``millstream serve`` and the Node reference server) through the client."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from millstream.dualmode import DualModeEndpoint, SSEEvent, dual_mode
from millstream.log import MemoryStore, SqliteStore, Store, format_offset
from servers import ServerProcess, millstream_server, reference_server

from .conftest import RawClient, parse_sse, serving, wait_for

SSE = {"accept": "text/event-stream"}


class Story:
    """An app whose generator yields ``words`` events, holding after ``hold`` of them until
    ``release(run)``; ``runs`` counts how often each generation really ran."""

    def __init__(self, **durable: Any) -> None:
        self.app = FastAPI()
        self.runs: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.finished: set[str] = set()

        @self.app.get("/story")
        @dual_mode(durable=True, key="run", heartbeat=0.2, **durable)
        async def story(
            run: str, words: int = 6, hold: int = -1, fail_at: int = -1
        ) -> AsyncIterator[SSEEvent]:
            self.runs[run] += 1
            try:
                for i in range(words):
                    if i == hold:
                        await self.gate(run).wait()
                    if i == fail_at:
                        raise ValueError(f"no word {i}")
                    yield SSEEvent({"word": i, "text": f"w{i}\nnext"}, event="word")
            finally:
                self.finished.add(run)

        self.endpoint: DualModeEndpoint = story

    def gate(self, run: str) -> asyncio.Event:
        return self.gates.setdefault(run, asyncio.Event())

    def release(self, run: str) -> None:
        self.gate(run).set()


def words_of(body: bytes) -> list[int]:
    events = parse_sse(body)
    assert all(e.event == "word" for e in events), events
    return [orjson.loads(e.data)["word"] for e in events]


# -- logs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def millstream_node() -> Iterator[ServerProcess]:
    with millstream_server("--memory") as process:
        yield process


@pytest.fixture(scope="module")
def reference_node() -> Iterator[ServerProcess]:
    with reference_server() as process:
        yield process


_streams = Counter[str]()


@pytest.fixture(params=["memory", "sqlite", "millstream-url", "node-url"])
async def durable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """``dual_mode`` options for each kind of log (remote ones under a fresh URL prefix)."""
    kind = request.param
    if kind in ("memory", "sqlite"):
        store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path)
        await store.start()
        try:
            yield {"store": store}
        finally:
            await store.aclose()
        return
    fixture = "millstream_node" if kind == "millstream-url" else "reference_node"
    node = request.getfixturevalue(fixture)
    _streams[kind] += 1
    yield {"url": f"{node.url}/v1/stream/dualmode-{_streams[kind]}", "ttl": 600}


# -- tests ----------------------------------------------------------------------------------


async def test_ids_are_offsets_and_a_reconnect_resumes_without_rerunning(
    durable: dict[str, Any],
) -> None:
    story = Story(**durable)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url) as client:
        first = await RawClient.get(url, "/story?run=r1&words=6&hold=3")
        body = await first.read_until(b'"word":2')
        events = parse_sse(body.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[1])  # skip head, chunk
        first.close()
        ids = [e.id for e in events if e.id]
        assert len(ids) >= 3
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        if "store" in durable:
            assert ids[:3] == [format_offset(n) for n in (1, 2, 3)]
        story.release("r1")
        resumed = await client.get(
            "/story?run=r1&words=6&hold=3", headers={**SSE, "last-event-id": ids[2]}
        )
        assert resumed.status_code == 200
        assert resumed.headers["idempotency-key"] == "r1"
        assert words_of(resumed.content) == [3, 4, 5]
        assert parse_sse(resumed.content)[0].data == '{"word":3,"text":"w3\\nnext"}'
        # Resuming after the last event: nothing more will come, so 204 (EventSource stops).
        last = parse_sse(resumed.content)[-1].id
        done = await client.get(
            "/story?run=r1&words=6&hold=3", headers={**SSE, "last-event-id": last}
        )
        assert done.status_code == 204
        # The batch answer of the finished generation comes from the log.
        batch = await client.get("/story?run=r1&words=6&hold=3")
        assert [item["word"] for item in batch.json()] == [0, 1, 2, 3, 4, 5]
        everything = await client.get("/story?run=r1&words=6&hold=3", headers=SSE)
        assert words_of(everything.content) == [0, 1, 2, 3, 4, 5]
    assert story.runs["r1"] == 1


async def test_a_second_request_attaches_to_the_running_generation(
    durable: dict[str, Any],
) -> None:
    story = Story(**durable)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        path = "/story?run=r2&words=5&hold=2"
        readers = [asyncio.create_task(client.get(path, headers=SSE)) for _ in range(3)]
        await wait_for(lambda: story.runs["r2"] == 1)
        batch = asyncio.create_task(client.get(path))
        await asyncio.sleep(0.05)
        assert not batch.done()  # batch mode waits for the generation to finish
        story.release("r2")
        bodies = [(await r).content for r in readers]
        assert all(words_of(b) == [0, 1, 2, 3, 4] for b in bodies)
        assert len({tuple(e.id for e in parse_sse(b)) for b in bodies}) == 1
        assert [item["word"] for item in (await batch).json()] == [0, 1, 2, 3, 4]
    assert story.runs["r2"] == 1


async def test_the_generation_outlives_the_connection_that_started_it(
    durable: dict[str, Any],
) -> None:
    story = Story(**durable)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url) as client:
        first = await RawClient.get(url, "/story?run=r3&words=4&hold=1")
        await first.read_until(b'"word":0')
        first.close()
        story.release("r3")
        await wait_for(lambda: "r3" in story.finished)
        batch = await client.get("/story?run=r3&words=4&hold=1")
        assert [item["word"] for item in batch.json()] == [0, 1, 2, 3]
    assert story.runs["r3"] == 1


async def test_a_failed_generation_replays_its_error(durable: dict[str, Any]) -> None:
    story = Story(**durable)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url) as client:
        stream = await client.get("/story?run=r4&fail_at=2", headers=SSE)
        events = parse_sse(stream.content)
        assert [e.event for e in events] == ["word", "word", "error"]
        assert orjson.loads(events[-1].data) == {"error": "no word 2", "type": "ValueError"}
        assert events[-1].id  # the error is in the log too
        batch = await client.get("/story?run=r4&fail_at=2")
        assert batch.status_code == 500
        assert batch.json()["error"] == {
            "code": "generator_failed",
            "error": "no word 2",
            "type": "ValueError",
        }
    assert story.runs["r4"] == 1


async def test_refusals(durable: dict[str, Any]) -> None:
    story = Story(**durable)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/story?run=r5&words=2")).status_code == 200
        reused = await client.get("/story?run=r5&words=3")
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        unknown = await client.get(
            "/story?run=nobody", headers={**SSE, "last-event-id": format_offset(1)}
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "generation_not_found"
        refused = ["garbage", "-1", "now"]
        if "store" in durable:  # a remote server's offsets are opaque: it judges them itself
            refused += [format_offset(0), format_offset(999_999)]  # start record, past the end
        for bad in refused:
            answer = await client.get(
                "/story?run=r5&words=2", headers={**SSE, "last-event-id": bad}
            )
            assert answer.status_code == 400, (bad, answer.text)
            assert answer.json()["error"]["code"] == "invalid_last_event_id"
        hostile = await client.get("/story?run=../../etc")
        assert hostile.status_code == 400
        assert hostile.json()["error"]["code"] == "invalid_idempotency_key"
        assert story.runs == Counter({"r5": 1})


async def test_idempotency_key_header_and_a_fresh_key_without_one() -> None:
    store = MemoryStore()
    app = FastAPI()
    runs: list[int] = []

    @app.post("/ask")
    @dual_mode(durable=True, store=store)
    async def ask(n: int = 2) -> AsyncIterator[int]:
        runs.append(n)
        for i in range(n):
            yield i

    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        keyed = {"idempotency-key": "order-7"}
        one = await client.post("/ask", headers=keyed)
        two = await client.post("/ask", headers=keyed)
        assert one.json() == two.json() == [0, 1]
        assert one.headers["idempotency-key"] == "order-7"
        fresh = await client.post("/ask")
        other = await client.post("/ask")
        assert fresh.headers["idempotency-key"] != other.headers["idempotency-key"]
        no_key = await client.post("/ask", headers={**SSE, "last-event-id": format_offset(1)})
        assert no_key.status_code == 400
        assert no_key.json()["error"]["code"] == "invalid_idempotency_key"
    assert runs == [2, 2, 2]
    assert "dualmode/ask/order-7" in await store.list_paths("dualmode/ask/")


async def test_aclose_cancels_running_generations_and_ends_their_log() -> None:
    store = MemoryStore()
    story = Story(store=store)
    async with serving(story.app) as url, httpx.AsyncClient(base_url=url) as client:
        first = await RawClient.get(url, "/story?run=r6&hold=1")
        await first.read_until(b'"word":0')
        first.close()
        await story.endpoint.dualmode.aclose()
        stream = await client.get("/story?run=r6&hold=1", headers=SSE)
        events = parse_sse(stream.content)
        assert [e.event for e in events] == ["word", "error"]
        assert orjson.loads(events[-1].data)["type"] == "Cancelled"
    assert "r6" in story.finished
