"""Real processes for the LLM tests: the fake provider (``fake_provider.py``) and the gateway
(``gateway_server.py``, standing in for ``millstream serve`` until the node runs services)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import ServerProcess

HERE = Path(__file__).resolve().parent
ANTHROPIC_KEY = "sk-ant-fake-key"
OPENAI_KEY = "sk-openai-fake-key"


class FakeProvider:
    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.url = process.url

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(f"{self.url}/_fake/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("reset")

    def config(self, **settings: Any) -> None:
        self.control("config", settings)

    def fault(self, kind: str, **spec: Any) -> None:
        self.control("faults", {"kind": kind, **spec})

    def requests(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = httpx.get(f"{self.url}/_fake/log", timeout=10).json()[
            "requests"
        ]
        return log


@pytest.fixture(scope="session")
def fake_process() -> Iterator[FakeProvider]:
    argv = [
        sys.executable,
        str(HERE / "fake_provider.py"),
        "--anthropic-key",
        ANTHROPIC_KEY,
        "--openai-key",
        OPENAI_KEY,
    ]
    process = ServerProcess(argv)
    try:
        yield FakeProvider(process)
    finally:
        process.terminate()


@pytest.fixture
def fake(fake_process: FakeProvider) -> Iterator[FakeProvider]:
    fake_process.reset()
    yield fake_process
    fake_process.reset()


@dataclass
class Gateway:
    process: ServerProcess
    keys: list[str]

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def key(self) -> str:
        return self.keys[0]

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}


@contextmanager
def gateway_process(
    fake: FakeProvider | None, *args: str, env: dict[str, str] | None = None
) -> Iterator[Gateway]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))
    }
    if fake is not None:
        environment.update(
            ANTHROPIC_API_KEY=ANTHROPIC_KEY,
            ANTHROPIC_BASE_URL=fake.url,
            OPENAI_API_KEY=OPENAI_KEY,
            OPENAI_BASE_URL=fake.url + "/v1",
        )
    environment.update(env or {})
    argv = [sys.executable, str(HERE / "gateway_server.py"), *args]
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        process = ServerProcess(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = [
        line.split("key: ", 1)[1].strip() for line in process.output if line.startswith("key: ")
    ]
    try:
        yield Gateway(process, keys)
    finally:
        process.terminate()


@pytest.fixture
def gateway(fake: FakeProvider) -> Iterator[Gateway]:
    """The gateway on the memory store in front of the fake (Anthropic), key for ``demo``."""
    with gateway_process(fake, "--memory", "--bootstrap-key", "demo", "--llm-rpm", "1000") as gw:
        yield gw
