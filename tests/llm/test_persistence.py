"""The gateway on the SQLite store: keys made by the CLI while the server runs, revocation,
the usage table, and a gateway killed mid-generation that ends it ``failed`` on restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from millstream.client._sse import SSEParser
from millstream.llm import AuthenticationError, ClaudeClient, RateLimitError

from .conftest import FakeProvider, serve
from .conftest import cli as run_cli

CHAT = "/v1/chat/completions"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "millstream", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_keys_work_on_a_running_server(fake: FakeProvider, tmp_path: Path) -> None:
    data = str(tmp_path)
    with serve(fake, tmp_path, keys=[]) as gw:
        # The real command line once (the key alone on the last line), in-process after that.
        created = cli(
            "keys", "create", "--project", "acme", "--budget-tokens", "5000", "--data-dir", data
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert key.startswith("ms_")
        with ClaudeClient(base_url=gw.url, api_key=key, max_retries=0) as client:
            response = client.complete("hello")
            assert response.project_id == "acme"
            stats = client.get_usage()
            assert stats.limit == 5000
            assert stats.remaining == 5000 - response.usage.total_tokens

            listed = run_cli("keys", "list", "--data-dir", data)
            assert "llm:acme" in listed
            usage = run_cli("usage", "--project", "acme", "--data-dir", data)
            assert "acme" in usage
            assert "sonnet" in usage
            assert f"{response.usage.total_tokens:,}" in usage

            # Its own rate limit applies to its next request, and goes again.
            assert "rpm 1" in run_cli("keys", "limits", key, "--rpm", "1", "--data-dir", data)
            assert "rpm 1" in run_cli("keys", "list", "--data-dir", data)
            with pytest.raises(RateLimitError):
                client.complete("hello")
            run_cli("keys", "limits", key, "--default", "--data-dir", data)
            assert client.complete("hello").project_id == "acme"

            assert "revoked" in run_cli("keys", "revoke", key, "--data-dir", data)
            with pytest.raises(AuthenticationError) as caught:
                client.complete("hello")
        assert "revoked" in caught.value.message


def test_cli_without_data_says_so(tmp_path: Path) -> None:
    done = cli("keys", "list", "--data-dir", str(tmp_path / "nothing"))
    assert done.returncode != 0
    assert "no millstream data" in done.stderr


def test_restart_mid_generation_ends_it_failed(fake: FakeProvider, tmp_path: Path) -> None:
    fake.config(token_delay=0.3)
    with serve(fake, tmp_path, keys=["crash:100000"]) as gw:
        key = gw.key
        request = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        with (
            httpx.Client(base_url=gw.url, headers=gw.headers(), timeout=30) as http,
            http.stream("POST", CHAT, json=request) as answer,
        ):
            parser = SSEParser()
            last = ""
            tokens = 0
            for chunk in answer.iter_raw():
                for event in parser.feed(chunk):
                    last = event.id or last
                    delta = orjson.loads(event.data)["choices"][0]["delta"]
                    tokens += 1 if delta.get("content") else 0
                if tokens >= 2:
                    break
            gw.process.kill()  # kill -9 mid-generation
    with serve(fake, tmp_path, keys=[]) as again:
        headers = {"authorization": f"Bearer {key}", "Last-Event-ID": last}
        rest = httpx.post(
            again.url + CHAT,
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
            headers=headers,
            timeout=30,
        )
        usage = httpx.get(again.url + "/v1/usage", headers=headers, timeout=30).json()
    events = SSEParser().feed(rest.content)
    assert events, (rest.status_code, rest.content)
    assert events[-1].data == "[DONE]"
    errors = [orjson.loads(e.data) for e in events if e.data.startswith('{"error"')]
    assert errors
    assert errors[0]["error"]["type"] == "gateway_restarted"
    final = orjson.loads(events[-3].data)
    assert final["status"] == "failed"
    assert final["usage"]["completion_tokens"] >= 1
    assert usage["total_tokens"] == final["usage"]["total_tokens"]  # billed once, not zero
