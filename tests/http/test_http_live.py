"""Live reads on a real socket (long-poll and SSE wake on append), and mounting under a prefix."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from conftest import LiveServer, start_server, stop_server
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from millstream.log import MemoryStore
from millstream.server.http import create_app


def _append_later(url: str, body: bytes, delay: float = 0.1) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        httpx.post(url, content=body, headers={"Content-Type": "text/plain"})

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_long_poll_wakes_on_append(client: httpx.Client, live: LiveServer) -> None:
    url = live.stream_url("live-lp")
    tail = client.put(url, headers={"Content-Type": "text/plain"}).headers["stream-next-offset"]
    writer = _append_later(url, b"news")
    response = client.get(url, params={"offset": tail, "live": "long-poll"})
    writer.join()
    # Woken by the append, not the 0.5 s timeout (which answers 204 without data). Not timed:
    # on a loaded machine the writer's own request can take longer than the timeout.
    assert response.status_code == 200
    assert response.content == b"news"
    assert response.headers["stream-cursor"].isdigit()


def test_sse_delivers_appends_then_closure(client: httpx.Client, live: LiveServer) -> None:
    url = live.stream_url("live-sse")
    client.put(url, headers={"Content-Type": "application/json"}, content=b'{"n":0}')

    def writer() -> None:
        time.sleep(0.1)
        headers = {"Content-Type": "application/json"}
        httpx.post(url, content=b'[{"n":1},{"n":2}]', headers=headers)
        httpx.post(url, headers={"Stream-Closed": "true"})

    thread = threading.Thread(target=writer)
    thread.start()
    events: list[tuple[str, bytes]] = []
    with client.stream("GET", url, params={"offset": "-1", "live": "sse"}) as sse:
        kind = ""
        for line in sse.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, line[5:].encode()))
    thread.join()
    data = [orjson.loads(payload) for kind, payload in events if kind == "data"]
    assert [item for batch in data for item in batch] == [{"n": 0}, {"n": 1}, {"n": 2}]
    last = orjson.loads(events[-1][1])
    assert last["streamClosed"] is True
    assert last["streamNextOffset"] == "0000000000000003_0000000000000000"


@pytest.fixture
def mounted() -> Iterator[LiveServer]:
    """The app mounted at /api/streams inside a Starlette app, under real uvicorn."""
    store = MemoryStore()
    inner = create_app(store, long_poll_timeout=0.5)

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("host app")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await inner.startup()  # Starlette does not forward lifespan events to mounts
        yield
        await inner.shutdown()

    outer = Starlette(
        routes=[Route("/", hello), Mount("/api/streams", app=inner)], lifespan=lifespan
    )
    server, thread = start_server(outer, store)
    try:
        yield server
    finally:
        stop_server(server, thread)


def test_mounted_under_a_prefix(mounted: LiveServer) -> None:
    base = f"{mounted.url}/api/streams"
    with httpx.Client(timeout=10) as http:
        assert http.get(mounted.url + "/").text == "host app"
        assert http.get(f"{base}/health").json()["status"] == "ok"
        created = http.put(
            f"{base}/v1/stream/a/b", content=b"x", headers={"Content-Type": "text/plain"}
        )
        assert created.status_code == 201
        assert created.headers["location"] == f"{base}/v1/stream/a/b"
        fork = http.put(
            f"{base}/v1/stream/c", headers={"Stream-Forked-From": "/api/streams/v1/stream/a/b"}
        )
        assert fork.status_code == 201
        assert http.get(f"{base}/v1/stream/c").content == b"x"
        tail = created.headers["stream-next-offset"]
        writer = _append_later(f"{base}/v1/stream/a/b", b"y")
        polled = http.get(f"{base}/v1/stream/a/b", params={"offset": tail, "live": "long-poll"})
        writer.join()
        assert polled.content == b"y"
        assert http.get(f"{mounted.url}/v1/stream/a/b").status_code == 404


def test_sse_connection_ends_after_the_reconnect_interval() -> None:
    """Readers are sent away after ``sse_reconnect_seconds`` so CDNs can collapse them (§10.2)."""
    store = MemoryStore()
    app = create_app(store, long_poll_timeout=0.1, sse_reconnect_seconds=0.4)
    server, thread = start_server(app, store)
    try:
        url = server.stream_url("reconnect")
        httpx.put(url, headers={"Content-Type": "text/plain"}, content=b"x")
        started = time.monotonic()
        with httpx.stream("GET", url, params={"offset": "-1", "live": "sse"}, timeout=5) as sse:
            body = sse.read()
        elapsed = time.monotonic() - started
    finally:
        stop_server(server, thread)
    assert 0.35 < elapsed < 2
    assert body.startswith(b"event: data\ndata:x\n\nevent: control\n")
    controls = [orjson.loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:{")]
    assert all("streamClosed" not in control for control in controls)
    assert controls[-1]["upToDate"] is True  # keep-alive controls while idle


def test_long_poll_on_a_closed_stream_answers_at_once(
    client: httpx.Client, live: LiveServer
) -> None:
    url = live.stream_url("closed-lp")
    created = client.put(url, headers={"Content-Type": "text/plain", "Stream-Closed": "true"})
    tail = created.headers["stream-next-offset"]
    started = time.monotonic()
    response = client.get(url, params={"offset": tail, "live": "long-poll"})
    assert time.monotonic() - started < 0.3
    assert response.status_code == 204
    assert response.headers["stream-closed"] == "true"
    assert "stream-cursor" not in response.headers
