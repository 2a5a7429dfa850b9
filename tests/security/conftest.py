"""Secured ``millstream serve`` processes for the security tests, and what they need.

``ca`` makes a certificate authority and a server certificate for 127.0.0.1 in the test (the
``cryptography`` package), ``issue_tokens`` writes tokens into a data directory before the
server starts (the CLI is tested on its own), and ``secured_server`` starts ``serve
--require-auth`` on it. Every test that expects a refusal also checks that it was logged and
counted and that nothing changed.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from millstream.auth import TokenStore
from millstream.log import SqliteStore
from servers import ServerProcess, millstream_argv
from tlsfiles import TlsFiles, make_tls_files

#: The tokens every secured server has, by name: their scopes.
TOKENS: dict[str, list[str]] = {
    "admin": ["admin:"],
    "reader-a": ["read:a/"],
    "writer-a": ["read:a/", "write:a/"],
    "kafka-app": ["read:kt-", "write:kt-", "group:kg-"],
    "kafka-reader": ["read:kt-", "group:kg-"],
    "metrics": ["metrics:"],
}


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA made for this test run and a server certificate it signed."""
    return make_tls_files(tmp_path_factory.mktemp("ca"))


def trusting(files: TlsFiles) -> ssl.SSLContext:
    """A client context that trusts ``files``' CA."""
    return ssl.create_default_context(cafile=str(files.ca))


def issue_tokens(data_dir: Path, tokens: Mapping[str, list[str]] = TOKENS) -> dict[str, str]:
    """Create ``tokens`` in the store of ``data_dir``; the token strings by name."""

    async def create() -> dict[str, str]:
        store = SqliteStore(data_dir)
        await store.start()
        try:
            made = {}
            for name, scopes in tokens.items():
                made[name] = (await TokenStore(store).create(name, scopes)).token
            return made
        finally:
            await store.aclose()

    data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(create())


@dataclass
class Secured:
    """A running secured server and its tokens."""

    server: ServerProcess
    tokens: dict[str, str]
    data_dir: Path
    verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def kafka(self) -> str:
        return self.server.kafka

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens.get(token, token)}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15, verify=self.verify)

    def stream(self, path: str) -> str:
        return f"{self.url}/v1/stream/{path}"

    def metric(self, name: str, **labels: str) -> float:
        """A sample of ``/metrics`` (0 if absent), read with the admin token."""
        with self.client("admin") as client:
            text = client.get("/metrics").text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
            if match and match.group(1) == name:
                found = (
                    ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
                )
                if found == wanted:
                    return float(match.group(3))
        return 0.0

    def log(self) -> str:
        return "".join(self.server.output)


def start_secured(data_dir: Path, *args: str, tokens: Mapping[str, list[str]] = TOKENS) -> Secured:
    made = issue_tokens(data_dir, tokens)
    server = ServerProcess(
        millstream_argv(
            "--data-dir", str(data_dir), "--require-auth", "--no-llm",
            "--long-poll-timeout", "10", *args,
        )
    )  # fmt: skip
    return Secured(server, made, data_dir)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """``serve --require-auth`` (plain TCP), a generous brute-force guard."""
    node = start_secured(tmp_path_factory.mktemp("secured"), "--auth-failure-burst", "100000")
    try:
        yield node
    finally:
        node.server.terminate()


def raw_request(
    url: str, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as written (no client-side dot-segment removal or encoding)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
