"""Fixtures of the telemetry suite: a Tansu broker per test (ready in milliseconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .brokers import Tansu, collect_kafka_python_leaks, tansu

HERE = Path(__file__).parent

# kafka-python 3.0 abandons the sockets of failed connection attempts to the garbage collector
# (broker down, TLS refused); whichever test the collector runs in would report them.
KAFKA_PYTHON_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(KAFKA_PYTHON_LEAK)


@pytest.fixture(autouse=True)
def _kafka_python_leaks() -> Iterator[None]:
    """Collect, at the end of each test, the sockets kafka-python 3.0 abandons when a broker
    is unreachable (``brokers.collect_kafka_python_leaks``)."""
    yield
    collect_kafka_python_leaks()


@pytest.fixture
def broker() -> Iterator[Tansu]:
    with tansu() as running:
        yield running


@pytest.fixture
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("spool"))
