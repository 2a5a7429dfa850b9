"""Commands that work on ``serve``'s data directory (``tokens``, ``keys``, ``usage``), also while
the server runs: both processes open the same SQLite file, and the server rereads tokens from it
(a revoked token stops working within about a second). With ``--store postgresql://...``
(``MILLSTREAM_STORE``) they work on a cluster's database instead, for every node at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from millstream.auth import TokenRecord
    from millstream.log import Store

__all__ = [
    "DATA_DIR_OPTION",
    "list_tokens",
    "open_postgres",
    "print_table",
    "run_on_data_dir",
    "token_id",
    "when",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("millstream-data"),
    show_default=True,
    envvar="MILLSTREAM_DATA_DIR",
    show_envvar=True,
    help="The data directory of `millstream serve`.",
)
_STORE_KEY = "millstream.store"


def _remember_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[_STORE_KEY] = value


_STORE = click.option(
    "--store",
    metavar="postgresql://USER@HOST:PORT/DATABASE",
    envvar="MILLSTREAM_STORE",
    show_envvar=True,
    expose_value=False,
    callback=_remember_store,
    help="Instead of --data-dir: the PostgreSQL database of a cluster (`serve --store`).",
)


def DATA_DIR_OPTION(command: F) -> F:
    """``--data-dir``, and ``--store`` for a cluster's database (``run_on_data_dir`` opens
    whichever was given)."""
    return _STORE(_DATA_DIR(command))


def open_postgres(url: str) -> Store:
    """A ``PostgresStore`` on ``url``, or a usage error saying what is wrong or missing."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise click.UsageError("--store takes a postgresql://USER@HOST:PORT/DATABASE URL")
    if importlib.util.find_spec("asyncpg") is None:
        raise click.ClickException(
            "--store postgresql://... needs the postgres extra: "
            "pip install 'millstream[server,postgres]'"
        )
    from millstream.log import PostgresStore

    return PostgresStore(url)


def run_on_data_dir(
    data_dir: Path, work: Callable[[Store], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the store in ``data_dir`` (created when ``create``), or the cluster's database
    given with ``--store``, run ``work``, close it."""
    from millstream.log import SqliteStore

    context = click.get_current_context(silent=True)
    url: str | None = context.meta.get(_STORE_KEY) if context is not None else None
    if url is None:
        if not create and not (data_dir / "millstream.db").exists():
            raise click.ClickException(
                f"no millstream data in {data_dir} (start `millstream serve --data-dir "
                f"{data_dir}` once, or pass the right --data-dir)"
            )
        data_dir.mkdir(parents=True, exist_ok=True)

    async def session() -> T:
        store = open_postgres(url) if url is not None else SqliteStore(data_dir)
        await store.start()
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(session())


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def list_tokens(data_dir: Path) -> list[TokenRecord]:
    """Every token of the data directory, revoked ones included."""
    from millstream.auth import TokenStore

    async def work(store: Store) -> list[TokenRecord]:
        return await TokenStore(store).list()

    return run_on_data_dir(data_dir, work)


def token_id(text: str, param_hint: str = "TOKEN") -> str:
    """The id a command argument names: an id as is, or the id inside a whole token."""
    from millstream.auth import AuthError, parse_token

    if not text.startswith("ms_"):
        return text
    try:
        return parse_token(text)[0]
    except AuthError as exc:
        raise click.BadParameter(exc.message, param_hint=param_hint) from exc


def print_table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table on standard output (rich, from the server extra)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)
