"""Fixtures of the telemetry suite: a Tansu broker per test (ready in milliseconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .brokers import Tansu, tansu


@pytest.fixture
def broker() -> Iterator[Tansu]:
    with tansu() as running:
        yield running


@pytest.fixture
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("spool"))
