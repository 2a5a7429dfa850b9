"""A real ``millstream serve`` process with both doors, shared by the Kafka tests of a module.

``kafka_server`` runs on the SQLite store (the default, durable) in a temporary directory; it
yields the ``ServerProcess``: ``.url`` is the HTTP door, ``.kafka`` the bootstrap address
(``127.0.0.1:PORT``). Tests use fresh topic names (``topic_name``) so they do not depend on
each other. Reuse it from other test packages with ``from tests.kafka_door.conftest import ...`` or
by starting ``servers.millstream_server`` yourself: every millstream test server has a Kafka
door on a free port.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from servers import ServerProcess, millstream_server

from . import matrix_report

_counter = itertools.count()


def kafka_node(data_dir: Path | None, *args: str) -> Iterator[ServerProcess]:
    """``millstream serve`` on free ports: SQLite in ``data_dir``, or ``--memory``."""
    store = ["--memory"] if data_dir is None else ["--data-dir", str(data_dir)]
    with millstream_server(*store, "--long-poll-timeout", "1", *args) as server:
        assert server.kafka, "".join(server.output)
        yield server


@pytest.fixture(scope="module")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from kafka_node(tmp_path_factory.mktemp("kafka-node"))


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return f"{base}-{next(_counter)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if item.get_closest_marker("kafka_matrix") is not None:
        matrix_report.record(item, call, report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = matrix_report.render(terminalreporter.config)
    if lines:
        terminalreporter.section("Kafka client matrix")
        for line in lines:
            terminalreporter.write_line(line)
