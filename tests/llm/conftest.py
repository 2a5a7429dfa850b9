"""Real processes for the LLM tests: the fake provider (``fake_provider.py``) and
``millstream serve`` in front of it, with keys made by ``millstream keys create``."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from millstream.cli import main
from servers import ServerProcess, millstream_argv

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
    data_dir: Path
    keys: list[str]
    project: str = "demo"  # the project of ``key``

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def key(self) -> str:
        return self.keys[0]

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}


def cli(*args: str) -> str:
    """Run a ``millstream`` command in this process; its standard output (fails the test on a
    non-zero exit)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def create_key(data_dir: Path, spec: str, *options: str) -> str:
    """``millstream keys create`` for ``PROJECT[:BUDGET_TOKENS]``: the key (its last line)."""
    project, _, budget = spec.partition(":")
    args = ["keys", "create", "--project", project, "--data-dir", str(data_dir), *options]
    if budget:
        args += ["--budget-tokens", budget]
    return cli(*args).strip().splitlines()[-1]


def provider_env(fake: FakeProvider | None) -> dict[str, str]:
    """This process's environment without provider settings, plus the fake's if given."""
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
    return environment


@contextmanager
def serve(
    fake: FakeProvider | None,
    data_dir: Path,
    *args: str,
    keys: Sequence[str] = ("demo",),
) -> Iterator[Gateway]:
    """``millstream serve --data-dir DATA_DIR ARGS`` (no Kafka door) with the fake provider's
    keys and URLs in the standard variables (none with ``fake=None``), then one API key per
    ``PROJECT[:BUDGET_TOKENS]`` in ``keys``, made by ``millstream keys create`` while it runs."""
    argv = [*millstream_argv("--no-kafka", "--data-dir", str(data_dir)), *args]
    process = ServerProcess(argv, env=provider_env(fake))
    try:
        made = [create_key(data_dir, spec) for spec in keys]
        yield Gateway(process, data_dir, made)
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def shared_gateway(
    fake_process: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One ``millstream serve`` per test module, in front of the fake (Anthropic)."""
    with serve(fake_process, tmp_path_factory.mktemp("llm"), "--llm-rpm", "1000", keys=[]) as gw:
        yield gw


@pytest.fixture
def gateway(shared_gateway: Gateway, fake: FakeProvider, request: pytest.FixtureRequest) -> Gateway:
    """The module's gateway with a key for a project of this test's own (fresh usage, budget
    and rate window): ``gateway.project``."""
    project = "t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    key = create_key(shared_gateway.data_dir, project)
    return Gateway(shared_gateway.process, shared_gateway.data_dir, [key], project)
