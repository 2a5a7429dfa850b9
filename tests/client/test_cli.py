"""``millstream create | append | read | tail | head | rm`` as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from millstream.client import DurableStream

from .conftest import Server


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "millstream", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_create_append_read_head_rm(url: str) -> None:
    assert cli("create", url).returncode == 0
    assert cli("append", url, '{"a": 1}').returncode == 0
    result = cli("append", url, "--lines", stdin='{"b": 2}\nplain text\n\n[1, 2]\n')
    assert result.returncode == 0, result.stderr
    assert "appended 3" in result.stdout
    read = cli("read", url)
    assert read.returncode == 0
    assert [json.loads(line) for line in read.stdout.splitlines()] == [
        {"a": 1},
        {"b": 2},
        "plain text",
        [1, 2],
    ]
    head = cli("head", url)
    assert "application/json" in head.stdout
    assert "closed:       no" in head.stdout
    assert cli("rm", url).returncode == 0
    missing = cli("head", url)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: Stream not found")


def test_read_from_offset_and_text_streams(url: str) -> None:
    handle = DurableStream.create(url, content_type="text/plain", data="one\n")
    middle = handle.append("two\n").next_offset
    handle.append("three\n")
    assert cli("read", url).stdout == "one\ntwo\nthree\n"
    assert cli("read", url, "--from", middle).stdout == "three\n"


def test_bare_names_use_millstream_url(server: Server) -> None:
    env = {"MILLSTREAM_URL": server.base}
    name = f"cli-bare-{time.monotonic_ns()}"
    assert cli("create", name, "-t", "text/plain", env=env).returncode == 0
    assert cli("append", name, "hi", env=env).returncode == 0
    assert cli("read", name, env=env).stdout == "hi"


def test_tail_follows_and_pretty_prints(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append({"old": True})
    proc = subprocess.Popen(
        [sys.executable, "-m", "millstream", "tail", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        # Tail starts at "now", so only new messages show: append once it says it follows.
        assert proc.stderr.readline().startswith(f"following {url} from ")
        handle.append({"new": [1, 2]})
        handle.close_stream()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"new": [1, 2]}
    assert "\n  " in out  # indented


def test_unreachable_server_is_one_line(server: Server) -> None:
    result = cli("head", "http://127.0.0.1:9/v1/stream/x")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
