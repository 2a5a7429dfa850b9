"""Session-wide fixtures: one real PostgreSQL server for every test that needs one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from postgres import PostgresServer, find_bindir

_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server started once per session (initdb in a temp dir), stopped after."""
    if find_bindir() is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs it (debian-packages.txt)")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """One database for the tests that isolate themselves by schema (``postgres_schema``)."""
    return postgres_server.database("suite")


@pytest.fixture
def postgres_schema() -> str:
    """A schema name no other test of the session uses."""
    return f"t{next(_schemas)}"
