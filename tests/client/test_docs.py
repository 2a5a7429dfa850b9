"""Every python example in docs/client.md (and the README's "Client" section, once it exists)
runs against a live server: the documented URL is swapped for the test server's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import Server

REPO = Path(__file__).resolve().parents[2]
DOC_URL = "http://127.0.0.1:4437"
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def readme_client_section() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## Client\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    return match.group(1) if match else ""


def run_blocks(blocks: list[str], server: Server, prefix: str) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{prefix}"}
    for number, block in enumerate(blocks):
        # Fresh stream names per server and run, so reruns never collide.
        code = block.replace(DOC_URL, server.base).replace("/v1/stream/", f"/v1/stream/{prefix}-")
        exec(compile(code, f"<{prefix} block {number}>", "exec"), namespace)


def test_docs_client_examples(server: Server) -> None:
    blocks = python_blocks((REPO / "docs" / "client.md").read_text())
    assert len(blocks) >= 10
    run_blocks(blocks, server, "docs")


def test_readme_client_examples(server: Server) -> None:
    section = readme_client_section()
    if not section:
        pytest.skip("README.md has no '## Client' section yet")
    blocks = python_blocks(section)
    assert blocks
    run_blocks(blocks, server, "readme")
