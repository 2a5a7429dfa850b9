"""Tokens on a cluster: ``millstream tokens`` works on the cluster's database (``--store``), so
one token is accepted by every node, and a revocation reaches every node."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from servers import wait_until

from .conftest import StartCluster

pytestmark = pytest.mark.timeout(180)


def _tokens(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "millstream", "tokens", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MILLSTREAM_STORE": store},
        check=False,
    )


def test_tokens_made_on_the_database_work_on_every_node(
    start_cluster: StartCluster, database: str
) -> None:
    made = _tokens("create", "--name", "chat", "--scope", "write:chat/", store=database)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]
    nodes = start_cluster(2, "--require-auth", "--no-llm")
    headers = {"Authorization": f"Bearer {token}"}
    a, b = (f"{node.url}/v1/stream/chat/1" for node in nodes)
    assert httpx.put(a).status_code == 401
    created = httpx.put(a, headers={**headers, "Content-Type": "text/plain"})
    assert created.status_code == 201, created.text
    appended = httpx.post(b, content=b"x", headers={**headers, "Content-Type": "text/plain"})
    assert appended.status_code == 204, appended.text
    assert "chat" in _tokens("list", store=database).stdout
    assert _tokens("revoke", token, store=database).returncode == 0
    for url in (a, b):
        assert wait_until(lambda url=url: httpx.head(url, headers=headers).status_code == 401, 10)
    assert _tokens("list", store="sqlite:///nowhere").returncode == 2  # not a PostgreSQL URL
