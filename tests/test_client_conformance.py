"""The official client-conformance suite (``@durable-streams/client-conformance-tests`` 0.2.11,
unmodified, in ``../shared/vendor/``) against millstream's client, sync and async.

The suite's runner starts its own Node reference server and drives our adapter
(``tests/client_conformance/adapter.py``) over stdin/stdout. Every case must run and pass,
including those the official Python client skips for features (auto, retryOptions,
batchItems); only the two the suite itself marks ``skip`` may be skipped. The runner checks
the results of successful commands only, so an adapter that answered an error where data was
expected would pass silently: each failed command in the runner's verbose log must belong to
an operation that expects a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from servers import NODE_DIR, REPO

SUITE = Path(
    os.environ.get(
        "MILLSTREAM_CLIENT_CONFORMANCE",
        REPO.parent / "shared" / "vendor" / "durable-streams-client-conformance-0.2.11",
    )
)
ADAPTERS = REPO / "tests" / "client_conformance"
TSX = ["npx", "tsx", "--tsconfig", "client-conformance.tsconfig.json"]
# Every case of 0.2.11; the suite skips two itself ("Swift implementation broken").
EXPECTED_TOTAL, EXPECTED_SKIPPED = 269, 2
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RESULT = re.compile(r"^  ([✓✗○]) (.*)$")
# "  read /test-stream-…: failed", "  await readOp: failed", "  append-batch /p: 1/3 succeeded"
_OP = re.compile(r"^  ([a-z-]+) (\S+): (ok|failed|(\d+)/(\d+) succeeded)$")
# Cases whose expectations do not say so, but where the reference server answers an error,
# correctly (the official Python client gets the same). Each must still fail as said here.
SERVER_REFUSES = {
    "Read with future offset": ("read", "400 for an offset past the tail; the case allows it"),
    "Read from offset zero": ("read", "400: '0' is not an offset of this server"),
    "SSE handles empty base64 payload": ("append", "400: an append needs a non-empty body"),
}

pytestmark = [
    pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / ".bin" / "tsx").exists(),
        reason="node/node_modules missing: run `make pytest` (it installs node/) first",
    ),
]


def expects_failure(expect: dict[str, Any] | None) -> bool:
    if not expect:
        return False
    status = expect.get("status")
    return (
        "errorCode" in expect
        or "messageContains" in expect
        or expect.get("valid") is False
        or expect.get("error") is True
        or bool(expect.get("failIndices"))
        or (isinstance(status, int) and status >= 400)
    )


def suite_cases() -> list[dict[str, Any]]:
    """The suite's own test cases, in the order its runner runs them."""
    done = subprocess.run(
        [*TSX, "client-conformance-cases.ts", str(SUITE)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [test for suite in json.loads(done.stdout) for test in suite["tests"]]


def silent_failures(output: str, cases: list[dict[str, Any]]) -> list[str]:
    """Failed commands in tests whose operations of that kind all expect success."""
    problems: list[str] = []
    failed: list[str] = []
    index = 0
    for line in output.splitlines():
        if match := _OP.match(line):
            action, _, outcome, good, total = match.groups()
            if outcome == "failed" or (good is not None and good != total):
                failed.append(action)
        elif match := _RESULT.match(line):
            test = cases[index]
            index += 1
            assert match[2].startswith(test["name"]), (match[2], test["name"])
            allowed = [op["action"] for op in test["operations"] if expects_failure(op["expect"])]
            if test["name"] in SERVER_REFUSES:
                action = SERVER_REFUSES[test["name"]][0]
                assert action in failed, f"{test['name']}: the server no longer refuses"
                allowed.append(action)
            for action in failed:
                if action in allowed:
                    allowed.remove(action)
                else:
                    problems.append(f"{test['name']}: a {action} failed, none was meant to")
            failed = []
    assert index == len(cases), f"matched {index} of {len(cases)} results"
    return problems


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_client_conformance_suite_passes(mode: str) -> None:
    assert (SUITE / "src" / "cli.ts").is_file(), f"the suite is not at {SUITE}"
    result = subprocess.run(
        [*TSX, str(SUITE / "src" / "cli.ts"), "--run", str(ADAPTERS / f"run-{mode}"), "--verbose"],
        cwd=NODE_DIR,
        env={**os.environ, "MILLSTREAM_PYTHON": sys.executable, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = _ANSI.sub("", result.stdout + result.stderr)
    summary = dict(re.findall(r"^(Total|Passed|Failed|Skipped): (\d+)", output, re.M))
    failures = [line for line in output.splitlines() if line.startswith("  ✗")]
    assert "adapter:" not in output, output[-6000:]
    assert result.returncode == 0, "\n".join([*failures, output[-4000:]])
    assert summary == {
        "Total": str(EXPECTED_TOTAL),
        "Passed": str(EXPECTED_TOTAL - EXPECTED_SKIPPED),
        "Failed": "0",
        "Skipped": str(EXPECTED_SKIPPED),
    }, summary
    skipped = [line for line in output.splitlines() if line.startswith("  ○")]
    assert all("skipped: Swift implementation broken" in line for line in skipped), skipped
    assert silent_failures(output, suite_cases()) == []
