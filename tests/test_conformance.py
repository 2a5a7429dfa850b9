"""The published Durable Streams conformance suite against a real `millstream serve` process.

Runs `node/conformance.test.mjs` (which calls `runConformanceTests` from
`@durable-streams/server-conformance-tests`) under vitest, once per store.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from servers import NODE_DIR, millstream_server

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Every test of @durable-streams/server-conformance-tests@0.3.6 with subscriptions on: a run
# that selects fewer (a filter, a skipped describe block) must not count as passing.
EXPECTED_TESTS = 338
_TESTS_LINE = re.compile(r"^\s*Tests\s+(\d+) passed \((\d+)\)\s*$", re.M)


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
@pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "@durable-streams").is_dir(),
    reason="node/node_modules missing: run `make pytest` (it installs node/) first",
)
@pytest.mark.parametrize("store", ["memory", "sqlite", "postgres"])
def test_conformance_suite_passes(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "postgres":
        args = ["--store", request.getfixturevalue("postgres_server").database("conformance")]
    else:
        args = ["--memory"] if store == "memory" else ["--data-dir", str(tmp_path / "data")]
    with millstream_server(*args, "--long-poll-timeout", "0.5") as server:
        result = subprocess.run(
            ["npx", "vitest", "run", "--config", "vitest.config.mjs"],
            cwd=NODE_DIR,
            env={**os.environ, "MILLSTREAM_URL": server.url, "CI": "1", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
    output = _ANSI.sub("", result.stdout + result.stderr)
    failed = sorted(
        {line.strip() for line in output.splitlines() if line.strip().startswith("FAIL")}
    )
    summary = [
        line for line in output.splitlines() if line.strip().startswith(("Tests", "Test Files"))
    ]
    assert result.returncode == 0, "\n".join([*summary, *failed, output[-4000:]])
    counts = _TESTS_LINE.search(output)
    assert counts, "\n".join(summary)
    assert (int(counts[1]), int(counts[2])) == (EXPECTED_TESTS, EXPECTED_TESTS), counts[0]
