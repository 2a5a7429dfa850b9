"""``millstream serve``: the Durable Streams server on the embedded store, zero configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

import click

from millstream.log import MemoryStore, Store
from millstream.server._run import ServeOptions, serve
from millstream.server.http import DEFAULT_MAX_BODY_SIZE

from . import main

__all__ = ["serve_command"]

FsyncPolicy = Literal["always", "interval", "never"]

_FSYNC_HELP = (
    "When appends reach the disk (SQLite store only; every mode survives kill -9 of the "
    "process). always (default): a 2xx means the data is fsynced, so it also survives power "
    "loss; concurrent appends share one fsync. interval: fsync at most every ~100 ms; an OS "
    "crash or power loss can lose the last ~100 ms of acknowledged appends. never: the OS "
    "decides; an OS crash or power loss can lose acknowledged appends and, rarely, corrupt the "
    "database file."
)


def _open_store(memory: bool, data_dir: Path, fsync: str) -> Store:
    if memory:
        return MemoryStore()
    try:
        from millstream.log import SqliteStore
    except ImportError as exc:  # pragma: no cover - only while the SQLite store is missing
        raise click.ClickException(
            f"the SQLite store is not available ({exc}); run with --memory"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    store: Store = SqliteStore(data_dir, fsync=cast(FsyncPolicy, fsync))
    return store


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=4437,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks any free port (the startup line shows which).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("millstream-data"),
    show_default=True,
    help="Where the SQLite store keeps its files.",
)
@click.option("--memory", is_flag=True, help="Keep everything in memory: nothing survives exit.")
@click.option(
    "--long-poll-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a long-poll read waits for new data before answering 204 (e.g. 0.5).",
)
@click.option(
    "--fsync",
    type=click.Choice(["always", "interval", "never"]),
    default="always",
    show_default=True,
    help=_FSYNC_HELP,
)
@click.option(
    "--max-body-size",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BODY_SIZE,
    show_default=True,
    help="Largest request body in bytes; larger appends get 413.",
)
@click.option(
    "--subscriptions/--no-subscriptions",
    default=True,
    show_default=True,
    help="Serve the subscription APIs under /v1/stream/__ds/ (PROTOCOL.md §6-7).",
)
@click.option(
    "--http-fast-path/--no-http-fast-path",
    default=True,
    show_default=True,
    envvar="MILLSTREAM_HTTP_FAST_PATH",
    help="Answer appends, catch-up reads and HEADs in millstream's own HTTP protocol instead "
    "of through ASGI (same responses, less CPU per request).",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str,
    port: int,
    data_dir: Path,
    memory: bool,
    long_poll_timeout: float,
    fsync: str,
    max_body_size: int,
    subscriptions: bool,
    http_fast_path: bool,
) -> None:
    """Run the Durable Streams server (streams at http://HOST:PORT/v1/stream/<path>).

    Prints one line, "millstream listening on http://HOST:PORT (store: ...)", once it accepts
    connections. SIGTERM finishes in-flight appends, ends live readers and exits 0.
    """
    explicit_dir = ctx.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE
    if memory and explicit_dir:
        raise click.UsageError("--memory and --data-dir exclude each other")
    store = _open_store(memory, data_dir, fsync)
    options = ServeOptions(
        host=host,
        port=port,
        long_poll_timeout=long_poll_timeout,
        max_body_size=max_body_size,
        subscriptions=subscriptions,
        http_fast_path=http_fast_path,
    )
    serve(store, options)
