"""Fixtures for the store suite: every test taking ``store`` runs once per ``Store`` kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from millstream.log import MemoryStore, PostgresStore, SqliteStore, Store

STORE_KINDS = ["memory", "sqlite", "postgres"]
#: Suites of Kafka entries also run on a SqliteStore keeping every batch in a batch file.
KAFKA_STORE_KINDS = [*STORE_KINDS, "sqlite-files"]


def make_store(kind: str, data_dir: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(data_dir)
    if kind == "sqlite-files":
        return SqliteStore(data_dir, batch_file_min=0)
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        return PostgresStore(dsn, schema=request.getfixturevalue("postgres_schema"))
    raise ValueError(kind)


async def opened(kind: str, data_dir: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A started store of ``kind``, closed afterwards (the body of the ``store`` fixtures)."""
    instance = make_store(kind, data_dir, request)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.aclose()


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async for instance in opened(request.param, tmp_path / "data", request):
        yield instance


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
