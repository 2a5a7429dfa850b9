"""The examples in README.md and docs/*.md, executed: console sessions against a real server
(each command's output must match the document), and the Python snippets as written."""

from __future__ import annotations

import asyncio
import re
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from servers import REPO, millstream_server

DOC_URL = "http://127.0.0.1:4437"


def section(path: Path, heading: str) -> str:
    text = path.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{path.name} has no '## {heading}' section"
    return match.group(1)


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def console_steps(block: str) -> list[tuple[str, str]]:
    """``$ command`` lines with the output lines that follow each, as the document shows them."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(command, "\n".join(output).strip("\n")) for command, output in steps]


def run_console(
    block: str,
    base_url: str,
    *,
    doc_urls: Mapping[str, str] | None = None,
    started: tuple[str, ...] = ("millstream serve", "make serve"),
) -> None:
    """Run each ``$`` command (``doc_urls``: more documented URLs to replace) and compare its
    output; commands starting with ``started`` are servers the test already runs."""
    steps = console_steps(block)
    assert steps
    for command, expected in steps:
        if command.startswith(started):
            continue  # the test started the server
        shell = command.replace(DOC_URL, base_url)
        for doc_url, real in (doc_urls or {}).items():
            shell = shell.replace(doc_url, real)
        done = subprocess.run(
            ["bash", "-c", shell], capture_output=True, text=True, timeout=20, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert done.stdout.strip("\n") == expected, f"{command}\n{done.stdout!r}"


def test_readme_try_it_session() -> None:
    (block,) = fenced(section(REPO / "README.md", "Try it"), "console")
    with millstream_server("--memory") as server:
        run_console(block, server.url)


def test_server_doc_session() -> None:
    block = fenced((REPO / "docs" / "server.md").read_text(), "console")[0]
    with millstream_server("--memory") as server:
        run_console(block, server.url)


@pytest.mark.parametrize("example", [0, 1], ids=["app", "node"])
async def test_server_doc_embedding_example(example: int) -> None:
    block = section(REPO / "docs" / "server.md", "Embedding the app")
    namespace: dict[str, Any] = {}
    exec(compile(fenced(block, "python")[example], "<docs/server.md>", "exec"), namespace)
    config = uvicorn.Config(namespace["app"], host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/streams/v1/stream/embedded"
        async with httpx.AsyncClient() as client:
            created = await client.put(url, headers={"content-type": "text/plain"})
            assert created.status_code == 201
            appended = await client.post(url, content=b"hi", headers={"content-type": "text/plain"})
            assert appended.status_code in (200, 204)
            read = await client.get(url, params={"offset": "-1"})
            assert read.content == b"hi"
            health = (await client.get(f"http://127.0.0.1:{port}/streams/health")).json()
            if example == 1:  # the node's services are mounted and report their health
                assert health["services"]["subscriptions"]["status"] == "ok"
                jwks = await client.get(url.replace("embedded", "__ds/jwks.json"))
                assert jwks.status_code == 200
                assert jwks.json()["keys"]
    finally:
        server.should_exit = True
        await task


async def test_storage_doc_example(tmp_path: Path) -> None:
    text = (REPO / "docs" / "storage.md").read_text()
    snippet = fenced(text, "python")[0].replace("./millstream-data", str(tmp_path))
    body = textwrap.indent(snippet, "    ")
    namespace: dict[str, Any] = {}
    exec(compile(f"async def example():\n{body}", "<docs/storage.md>", "exec"), namespace)
    await namespace["example"]()
    assert (tmp_path / "millstream.db").exists()


def test_kafka_doc_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/kafka.md: the Python snippets against a real node (their printed results as the
    comments and the console session show), then the console session over HTTP."""
    text = (REPO / "docs" / "kafka.md").read_text()
    with millstream_server("--memory") as server:
        snippets = fenced(text, "python")
        for snippet in snippets:
            code = snippet.replace("127.0.0.1:9092", server.kafka).replace(DOC_URL, server.url)
            exec(compile(code, "<docs/kafka.md>", "exec"), {})
        printed = capsys.readouterr().out.splitlines()
        assert printed[0] == (
            "[(0, b'customer-0', b'{\"order\": 0}'), (1, b'customer-1', b'{\"order\": 1}'), "
            "(2, b'customer-2', b'{\"order\": 2}')]"
        )
        assert printed[1] == "[{'n': 0}, {'n': 1}, {'n': 2}]"
        assert "# [{'n': 0}, {'n': 1}, {'n': 2}]" in snippets[1]
        session = fenced(section(REPO / "docs" / "kafka.md", "Try it"), "console")
        (block,) = session
        run_console(block, server.url)


async def test_log_doc_example() -> None:
    text = (REPO / "docs" / "log.md").read_text()
    body = textwrap.indent(fenced(text, "python")[0], "    ")
    namespace: dict[str, Any] = {}
    exec(compile(f"async def example():\n{body}", "<docs/log.md>", "exec"), namespace)
    await namespace["example"]()


async def test_scale_out_doc_lease_example() -> None:
    block = section(
        REPO / "docs" / "scale-out.md", "Running a service once across the cluster: `Lease`"
    )
    body = textwrap.indent(fenced(block, "python")[0], "    ")
    namespace: dict[str, Any] = {}
    exec(compile(f"async def example():\n{body}", "<docs/scale-out.md>", "exec"), namespace)
    await namespace["example"]()
