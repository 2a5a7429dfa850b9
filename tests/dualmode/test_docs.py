"""Every example in docs/dualmode.md runs: each Python block is executed, its ``app`` served by
uvicorn, and the console session after it must print what the document shows (the document's
URLs swapped for the test servers')."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from servers import REPO, ServerProcess, millstream_server
from test_docs_examples import run_console

from .conftest import parse_sse, serving

DOC = REPO / "docs" / "dualmode.md"
APP_URL = "http://127.0.0.1:8000"
NODE_URL = "http://127.0.0.1:4437"
BLOCK = re.compile(r"```(python|console)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str | None]]:
    """(python block, the console block right after it or None), in document order."""
    pairs: list[tuple[str, str | None]] = []
    for language, body in BLOCK.findall(DOC.read_text()):
        if language == "python":
            pairs.append((body, None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], body)
    return pairs


@pytest.fixture(scope="module")
def node() -> Iterator[ServerProcess]:
    with millstream_server("--memory") as process:
        yield process


def test_the_first_example_is_durable() -> None:
    first, console = examples()[0]
    assert "durable=True" in first
    assert console is not None
    assert "Last-Event-ID" in console


@pytest.mark.parametrize("index", range(len(examples())))
async def test_example(index: int, request: pytest.FixtureRequest) -> None:
    code, console = examples()[index]
    urls = {}
    if NODE_URL in code + (console or ""):
        urls[NODE_URL] = request.getfixturevalue("node").url
    for doc_url, real in urls.items():
        code = code.replace(doc_url, real)
    namespace: dict[str, Any] = {"__name__": f"dualmode_doc_{index}"}
    exec(compile(code, f"<docs/dualmode.md example {index}>", "exec"), namespace)
    app = namespace.get("app")
    if app is None:
        assert console is None, "a console session needs an app"
        return
    async with serving(app, lifespan="on") as url:
        if console is not None:
            # The document's Durable Streams server (port 4437) is run_console's own DOC_URL.
            await asyncio.to_thread(
                run_console,
                console,
                urls.get(NODE_URL, url),
                doc_urls={APP_URL: url},
                started=("uvicorn ",),
            )


async def test_readme_section() -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Dual-mode endpoints") : text.index("## The server")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, Any] = {"__name__": "dualmode_readme"}
    exec(compile(code, "<README.md>", "exec"), namespace)
    async with serving(namespace["app"]) as url, httpx.AsyncClient(base_url=url) as client:
        params = {"chat_id": "c1", "prompt": "hello dual mode"}
        batch = await client.get("/chat", params=params)
        assert batch.json() == [{"token": "hello"}, {"token": "dual"}, {"token": "mode"}]
        stream = await client.get("/chat", params=params, headers={"accept": "text/event-stream"})
        assert [e.data for e in parse_sse(stream.content)][-1] == '{"token":"mode"}'
