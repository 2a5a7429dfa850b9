"""The seed's four examples (examples/telemetry/) run as scripts against a real millstream serve:
each exits 0 with its output, and the Sentinel receives every event they send."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from millstream.telemetry import SentinelClient
from servers import REPO

from .brokers import millstream
from .providers import fake_provider

EXAMPLES = REPO / "examples" / "telemetry"


def run(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_examples_against_a_real_server(tmp_path: Path) -> None:
    with millstream(tmp_path / "data") as server, fake_provider() as provider:
        env = {
            **os.environ,
            "SENTINEL_BROKERS": server.bootstrap,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),  # the default spool lives here
            "OPENAI_BASE_URL": f"{provider}/v1",
            "OPENAI_API_KEY": "test",
        }
        basic = run("basic_usage.py", env)
        assert "✓ Delivered: 1 sent, 0 dropped" in basic
        assert "✓ Event sent with a context manager" in basic
        asynchronous = run("async_usage.py", env)
        assert "✓ Sent 5 events concurrently!" in asynchronous
        assert "✓ Event acknowledged by the broker" in asynchronous
        builder = run("builder_pattern.py", env)
        assert builder.count("sent") == 2
        integration = run("openai_integration.py", env)
        assert "Response: echo: What is the capital of France?" in integration
        assert "Streamed: echo: What is the capital of France?" in integration

        expected = 2 + 6 + 2 + 2
        deadline = time.monotonic() + 30
        while True:
            health = httpx.get(f"{server.url}/health").json()["services"]["sentinel"]
            if health["processed"] >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert health["processed"] == expected
        events = httpx.get(f"{server.url}/api/v1/telemetry").json()["data"]
        services = {e["service_name"] for e in events}
        assert services == {"example-service", "async-example-service", "openai-example"}
        tracked = [e for e in events if e["service_name"] == "openai-example"]
        assert {e["model"] for e in tracked} == {"gpt-3.5-turbo", "gpt-4"}
        assert all(e["cost_usd"] > 0 for e in tracked)
        streamed = next(e for e in tracked if e["metadata"].get("streamed"))
        assert float(streamed["metadata"]["time_to_first_token_ms"]) > 0
        haiku = next(e for e in events if e["model"] == "gpt-4-turbo")
        assert haiku["trace_id"] == "trace-abc-123"


def doc_block(heading: str) -> str:
    text = (REPO / "docs" / "telemetry.md").read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, heading
    (block,) = re.findall(r"```python\n(.*?)```", match.group(1), re.S)
    return block


def test_docs_quick_start_and_instrumenting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with millstream(tmp_path / "data") as server, fake_provider() as provider:
        quick = doc_block("Quick start").replace("localhost:9092", server.bootstrap)
        namespace: dict[str, Any] = {}
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the default spool
        exec(compile(quick, "<docs/telemetry.md>", "exec"), namespace)

        oa = openai.OpenAI(base_url=f"{provider}/v1", api_key="test", max_retries=0)
        with SentinelClient(brokers=[server.bootstrap]) as client:
            namespace = {
                "client": client,
                "openai_client": oa,
                "messages": [{"role": "user", "content": "hi"}],
                "price": lambda model, prompt, completion: 1e-6 * (prompt + completion),
            }
            exec(
                compile(doc_block("Instrumenting calls"), "<docs/telemetry.md>", "exec"), namespace
            )
            namespace["ask"](messages=[{"role": "user", "content": "decorated"}], model="gpt-4o")
        readme = (REPO / "README.md").read_text().split("## LLM telemetry", 1)[1]
        (block,) = re.findall(r"```python\n(.*?)```", readme.split("\n## ", 1)[0], re.S)
        namespace = {"openai_client": oa, "messages": [{"role": "user", "content": "readme"}]}
        exec(
            compile(block.replace("localhost:9092", server.bootstrap), "<README>", "exec"),
            namespace,
        )
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/health").json()["services"]["sentinel"]["processed"] < 5:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        events = httpx.get(f"{server.url}/api/v1/telemetry").json()["data"]
        assert [e["service_name"] for e in events].count("chat-api") == 5
        answer = httpx.get(
            f"{server.url}/api/v1/anomalies",
            params={"service": "chat-api", "severity": "high,critical"},
        )
        assert answer.status_code == 200
