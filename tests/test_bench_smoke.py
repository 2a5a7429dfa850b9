"""The benchmark harness cannot rot silently: one tiny scenario against a real millstream, plus
the parts that decide what a reader sees (failures never shown as numbers, HTTP framing)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the harness is a top-level package beside src/, not installed
    sys.path.insert(0, str(REPO))

from benchmarks import _report  # noqa: E402
from benchmarks.scenarios._http1 import _Protocol  # noqa: E402
from benchmarks.scenarios._sse import SSEReader  # noqa: E402


def _smoke(out: Path, *args: str) -> None:
    """``python -m benchmarks --smoke ARGS`` writing to ``out``; it must exit 0."""
    argv = [sys.executable, "-m", "benchmarks", "--smoke", *args, "--out", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_smoke_run_against_millstream(tmp_path: Path) -> None:
    """``python -m benchmarks --smoke`` runs one scenario end to end and writes both files."""
    _smoke(tmp_path, "--servers", "millstream-memory", "--scenarios", "append-1")
    doc = json.loads((tmp_path / "latest-smoke.json").read_text())
    assert doc["servers"]["millstream-memory"]["status"] == "ran", doc["servers"]
    result = doc["results"]["millstream-memory"]["append-1"]
    assert result["status"] == "ok", result
    assert (result["requests"], result["errors"]) == (50, 0)
    assert result["values"]["msgs_per_s"] > 0
    assert 0 < result["values"]["p50_ms"] <= result["values"]["p99_ms"]
    assert 0 < result["loadgen_cpu"] < 2
    assert "append 100 B, 1 writer" in (tmp_path / "latest-smoke.md").read_text()
    assert doc["machine"]["cores"]
    assert doc["harness"]["aiohttp"]


def test_smoke_run_of_the_dualmode_suite(tmp_path: Path) -> None:
    """``--suite dualmode``: the SSE apps run, every event is checked, ratios are printed, and
    the files do not overwrite the Durable Streams suite's."""
    servers, scenario = "dualmode,streaming-response", "sse-1-connection"
    _smoke(tmp_path, "--suite", "dualmode", "--servers", servers, "--scenarios", scenario)
    doc = json.loads((tmp_path / "latest-smoke-dualmode.json").read_text())
    for server in ("dualmode", "streaming-response"):
        result = doc["results"][server]["sse-1-connection"]
        assert result["status"] == "ok", result
        assert (result["requests"], result["errors"]) == (2000, 0)
        assert result["values"]["events_per_s"] > 0
    markdown = (tmp_path / "latest-smoke-dualmode.md").read_text()
    assert "dualmode ÷ streaming-response" in markdown
    assert doc["suite"] == "dualmode"
    assert not (tmp_path / "latest-smoke.json").exists()


def _doc(subject: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    figure = {"key": "msgs_per_s", "label": "append", "unit": "msg/s", "higher_is_better": True}
    return {
        "mode": "quick",
        "date": "2026-01-01T00:00:00+00:00",
        "machine": {"cores": 2, "memory_gib": 1.0},
        "harness": {},
        "servers": {
            "millstream": {"label": "millstream", "compare_to": "", "status": "ran"},
            "peer": {"label": "peer", "compare_to": "millstream", "status": "ran"},
        },
        "scenarios": {"durable-streams": {"append-1": {"figures": [figure]}}},
        "results": {"millstream": {"append-1": subject}, "peer": {"append-1": peer}},
    }


def _ok(value: float) -> dict[str, Any]:
    return {"status": "ok", "values": {"msgs_per_s": value}, "loadgen_cpu": 0.25, "errors": 0}


def test_ratio_above_one_means_millstream_did_better() -> None:
    [row] = _report.rows(_doc(_ok(3000), _ok(1000)))
    assert row.cells == ["3,000 (25%)", "1,000 (25%)"]
    assert row.ratios == ["3.00×"]


def test_failed_peer_shows_its_error_count_and_no_ratio() -> None:
    failed = {"status": "failed", "failure": "7 of 9 requests failed", "values": {}, "errors": 7}
    [row] = _report.rows(_doc(_ok(3000), failed))
    assert row.cells[1] == "failed (7 errors)"
    assert row.ratios == ["–"]
    assert "7 of 9 requests failed" in _report.markdown(_doc(_ok(3000), failed), "cmd")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nStream-Next-Offset: 7\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nStream-Next-Offset: 7\r\n\r\n"
        b"2\r\nhe\r\n3;x=1\r\nllo\r\n0\r\n\r\n",
    ],
)
async def test_lean_client_frames_a_response_fed_one_byte_at_a_time(raw: bytes) -> None:
    protocol = _Protocol()
    protocol.waiter = asyncio.get_running_loop().create_future()
    for i in range(len(raw)):
        assert not protocol.waiter.done()
        protocol.data_received(raw[i : i + 1])
    response = protocol.waiter.result()
    assert (response.status, response.body) == (200, b"hello")
    assert response.headers["stream-next-offset"] == "7"
    assert not protocol.buffer


def test_sse_reader_joins_data_lines_and_dispatches_on_blank_line() -> None:
    reader = SSEReader()
    lines = [b"event: data\n", b"data: [1,\n", b"data:2]\n", b": comment\n", b"\n"]
    events = [reader.feed_line(line) for line in lines]
    assert events == [None, None, None, None, ("data", "[1,\n2]")]


def test_kafka_smoke_run_against_millstream(tmp_path: Path) -> None:
    """The Kafka scenarios (confluent-kafka as the load generator) run against the Kafka door:
    produce then consume with every record checked, and the end-to-end latency."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--servers",
            "millstream-memory",
            "--scenarios",
            "kafka-100b-6p,kafka-e2e",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads((tmp_path / "latest-smoke.json").read_text())
    results = doc["results"]["millstream-memory"]
    throughput, latency = results["kafka-100b-6p"], results["kafka-e2e"]
    assert throughput["status"] == "ok", throughput
    assert (throughput["requests"], throughput["errors"]) == (2000, 0)  # each consumed, checked
    assert throughput["values"]["produce_msgs_per_s"] > 0
    assert throughput["values"]["consume_msgs_per_s"] > 0
    assert latency["status"] == "ok", latency
    assert 0 < latency["values"]["p50_ms"] <= latency["values"]["p99_ms"]
    assert doc["harness"]["librdkafka"]
