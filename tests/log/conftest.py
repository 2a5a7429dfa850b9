"""Fixtures for the store suite: every test taking ``store`` runs once per ``Store`` kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from millstream.log import MemoryStore, SqliteStore, Store

STORE_KINDS = ["memory", "sqlite"]


def make_store(kind: str, data_dir: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(data_dir)
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    instance = make_store(request.param, tmp_path / "data")
    await instance.start()
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture
async def sqlite_stores(tmp_path: Path) -> AsyncIterator[Callable[..., SqliteStore]]:
    """Open ``SqliteStore``s on one data dir (to close and reopen); all are closed at the end."""
    opened: list[SqliteStore] = []

    def open_store(**options: object) -> SqliteStore:
        instance = SqliteStore(tmp_path / "data", **options)  # type: ignore[arg-type]
        opened.append(instance)
        return instance

    try:
        yield open_store
    finally:
        for instance in opened:
            await instance.aclose()


#: Store suites SqliteStore does not pass yet (log-api step 3 implements them there).
_SQLITE_PENDING: set[str] = set()


@pytest.fixture(autouse=True)
def _sqlite_pending(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    kind = callspec.params.get("store") if callspec is not None else None
    if kind == "sqlite" and request.module.__name__.rsplit(".", 1)[-1] in _SQLITE_PENDING:
        pytest.xfail("SqliteStore implements Kafka entries and the key-value table in step 3")
