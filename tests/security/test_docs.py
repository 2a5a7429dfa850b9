"""The examples of docs/security.md and docs/operations.md, executed against real servers: each
console command's output must be what the document shows."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from servers import REPO, ServerProcess, millstream_argv
from test_docs_examples import DOC_URL, console_steps, fenced, section

from .conftest import issue_tokens

pytestmark = pytest.mark.timeout(180)
SECURITY = REPO / "docs" / "security.md"
OPERATIONS = REPO / "docs" / "operations.md"


def _session(block: str, url: str | None, cwd: Path) -> None:
    """Run each ``$`` command in ``cwd`` (``millstream serve`` lines that start a server are the
    test's own) and compare its output with the document's."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command, expected in console_steps(block):
        if command.startswith("millstream serve") and "--print-config" not in command:
            continue
        shell = command.replace(DOC_URL, url) if url else command
        done = subprocess.run(
            ["bash", "-c", shell], capture_output=True, text=True, timeout=60, cwd=cwd,
            env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert done.stdout.strip("\n") == expected, f"{command}\n{done.stdout!r}"


def test_security_quick_start(tmp_path: Path) -> None:
    (block,) = fenced(section(SECURITY, "Quick start"), "console")
    server = ServerProcess(
        millstream_argv("--data-dir", "data", "--require-auth", "--no-llm"), cwd=tmp_path
    )
    try:
        _session(block, server.url, tmp_path)
    finally:
        server.terminate()


def test_security_kafka_example(tmp_path: Path) -> None:
    (code,) = fenced(section(SECURITY, "Kafka"), "python")
    token = issue_tokens(tmp_path, {"chat-app": ["read:chat", "write:chat"]})["chat-app"]
    server = ServerProcess(
        millstream_argv("--data-dir", str(tmp_path), "--require-auth", "--no-llm")
    )
    try:
        body = textwrap.indent(code, "    ")
        namespace: dict[str, object] = {"BOOTSTRAP": server.kafka, "TOKEN": token}
        exec(f"async def example():\n{body}", namespace)
        asyncio.run(namespace["example"]())  # type: ignore[operator]
        headers = {"Authorization": f"Bearer {token}"}
        import httpx

        read = httpx.get(
            f"{server.url}/v1/stream/chat-events", params={"offset": "-1"}, headers=headers
        )
        assert read.content == b"hello"
    finally:
        server.terminate()


def test_operations_configuration(tmp_path: Path) -> None:
    (block,) = fenced(section(OPERATIONS, "Configuration"), "console")
    _session(block, None, tmp_path)
    (toml,) = fenced(section(OPERATIONS, "Configuration"), "toml")
    config = tmp_path / "documented.toml"
    config.write_text(toml)
    done = subprocess.run(
        [sys.executable, "-m", "millstream", "serve", "--config", str(config), "--print-config"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2  # the documented certificate paths do not exist here...
    assert "tls-cert" in done.stderr or "tls_cert" in done.stderr  # ...and nothing else is wrong


def test_operations_metrics(tmp_path: Path) -> None:
    (block,) = fenced(section(OPERATIONS, "Metrics"), "console")
    server = ServerProcess(millstream_argv("--memory", "--no-llm"), cwd=tmp_path)
    try:
        _session(block, server.url, tmp_path)
    finally:
        server.terminate()


def test_every_documented_metric_is_exported() -> None:
    table = section(OPERATIONS, "Metrics")
    documented = set(re.findall(r"`(millstream_[a-z_]+)`", table))
    source = "".join(p.read_text() for p in (REPO / "src" / "millstream").rglob("*.py"))
    for name in documented:
        stem = name.removeprefix("millstream_").removesuffix("_total")
        assert f'"{stem}' in source or f'"millstream_{stem}' in source, name
