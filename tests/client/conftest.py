"""Fixtures for the client suite: every server-facing test runs against both a real
``millstream serve --memory`` process and the Node reference server (``@durable-streams/server``).

Servers are started once per session with a 1 s long-poll timeout so live tests stay fast.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import ServerProcess, millstream_server, reference_server

from .faultproxy import FaultProxy, running_proxy

SERVERS = ["millstream", "node"]
_counter = itertools.count()


def millstream_available() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "millstream", "serve", "--help"],
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0


@dataclass
class Server:
    name: str
    process: ServerProcess

    @property
    def base(self) -> str:
        return self.process.url

    def stream_url(self, name: str | None = None) -> str:
        return f"{self.base}/v1/stream/{name or f't{next(_counter)}'}"


@pytest.fixture(scope="session", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "millstream":
        if not millstream_available():
            pytest.skip("`python -m millstream serve` is not available yet")
        with millstream_server("--memory", "--long-poll-timeout", "1") as process:
            yield Server("millstream", process)
    else:
        with reference_server("--long-poll-timeout-ms", "1000") as process:
            yield Server("node", process)


@pytest.fixture
def url(server: Server) -> str:
    """A fresh stream URL (not created) on the current server."""
    return server.stream_url()


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultProxy]:
    with running_proxy(server.base) as p:
        yield p


def via(proxy: FaultProxy, stream_url: str) -> str:
    """The same stream URL, through the proxy."""
    path = stream_url.split("/", 3)[3]
    return f"{proxy.url}/{path}"


@pytest.fixture(autouse=True)
def _release_handles(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Handles a test creates without ``with`` are released when it ends (no socket leaks)."""
    from millstream.client import _sync

    created: list[_sync.DurableStream] = []
    original = _sync.DurableStream.__init__

    def tracking_init(self: _sync.DurableStream, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        created.append(self)

    monkeypatch.setattr(_sync.DurableStream, "__init__", tracking_init)
    yield
    for handle in created:
        handle.release()
