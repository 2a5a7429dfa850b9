"""A real browser: Debian's headless Chromium opens a page whose ``EventSource`` reads a durable
endpoint through a proxy; the proxy cuts every connection mid-stream, and the browser's own
reconnect (with ``Last-Event-ID``) must resume without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from client.faultproxy import running_proxy
from millstream.dualmode import SSEEvent, dual_mode
from millstream.log import MemoryStore

from .conftest import serving, wait_for

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORDS = 20
HALF = 10

PAGE = """<!doctype html>
<script>
const seen = [], ids = [];
let errors = 0;
const source = new EventSource("/story?run=browser-1");
source.addEventListener("word", (event) => {
  seen.push(JSON.parse(event.data).word);
  ids.push(event.lastEventId);
  fetch("/progress", {method: "POST", body: JSON.stringify({n: seen.length})});
  if (seen.length >= WORDS) {
    source.close();
    fetch("/report", {method: "POST", body: JSON.stringify({seen, ids, errors})});
  }
});
source.onerror = () => { errors += 1; };
</script>
""".replace("WORDS", str(WORDS))


class RecordHeaders:
    """Pure ASGI middleware: keeps the Last-Event-ID of every request to /story."""

    def __init__(self, app: ASGIApp, sink: list[str | None]) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/story":
            headers = dict(scope["headers"])
            last = headers.get(b"last-event-id")
            self.sink.append(last.decode() if last is not None else None)
        await self.app(scope, receive, send)


def browser_app() -> tuple[Any, dict[str, Any]]:
    app = FastAPI()
    state: dict[str, Any] = {"runs": 0, "progress": 0, "report": None, "resumes": []}
    gate = asyncio.Event()
    state["gate"] = gate

    @app.get("/page")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.post("/progress")
    async def progress(request: Request) -> None:
        state["progress"] = max(state["progress"], orjson.loads(await request.body())["n"])

    @app.post("/report")
    async def report(request: Request) -> None:
        state["report"] = orjson.loads(await request.body())

    @app.get("/story")
    @dual_mode(durable=True, store=MemoryStore(), key="run", retry=200, heartbeat=1.0)
    async def story(run: str) -> AsyncIterator[SSEEvent]:
        state["runs"] += 1
        for word in range(WORDS):
            if word == HALF:
                await gate.wait()
            yield SSEEvent({"word": word}, event="word")

    return RecordHeaders(app, state["resumes"]), state


async def test_event_source_resumes_after_the_connection_is_cut(tmp_path: Path) -> None:
    app, state = browser_app()
    async with serving(app) as url:
        with running_proxy(url) as proxy:
            assert CHROMIUM is not None
            log = (tmp_path / "chromium.log").open("wb")
            browser = await asyncio.create_subprocess_exec(
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                f"{proxy.url}/page",
                stdout=log,
                stderr=log,
            )
            try:
                await wait_for(lambda: state["progress"] >= HALF, timeout=60)
                proxy.kill_connections()  # mid-stream: the generator is holding at word 10
                await wait_for(lambda: len(state["resumes"]) >= 2, timeout=30)
                state["gate"].set()
                await wait_for(lambda: state["report"] is not None, timeout=60)
            finally:
                browser.kill()
                await browser.wait()
                log.close()
    report = state["report"]
    assert report["seen"] == list(range(WORDS))  # no gap, no duplicate
    assert report["errors"] >= 1  # the browser did see the connection drop
    assert len(set(report["ids"])) == WORDS
    first, resumed = state["resumes"][0], state["resumes"][1]
    assert first is None
    assert resumed == report["ids"][HALF - 1]  # the browser sent the last id it had
    assert state["runs"] == 1  # the reconnect read the log; the generator ran once
