"""``millstream serve``: a node on the embedded store, zero configuration: the Durable Streams
HTTP door, the Kafka door and the services (``millstream.node``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, cast

import click

from millstream.log import MemoryStore, Store
from millstream.server.http import DEFAULT_MAX_BODY_SIZE
from millstream.server.kafka import DEFAULT_MAX_REQUEST_SIZE

from . import main
from ._serve_llm import gateway_config, llm_options

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
    "--sentinel/--no-sentinel",
    default=True,
    show_default=True,
    help="Run the Sentinel: anomaly detection over the llm-telemetry topic, anomalies on "
    "llm-anomalies, REST under /api/v1 (docs/telemetry.md).",
)
@click.option(
    "--kafka-port",
    default=9092,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port of the Kafka door; 0 picks any free port (the startup line shows which).",
)
@click.option(
    "--kafka-advertised-host",
    default=None,
    help="Host name the Kafka door gives clients in Metadata (default: --host).",
)
@click.option("--no-kafka", is_flag=True, help="Do not run the Kafka door.")
@click.option(
    "--kafka-max-request-size",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_REQUEST_SIZE,
    show_default=True,
    help="Largest Kafka request in bytes; a larger frame closes the connection.",
)
@click.option(
    "--kafka-idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds a Kafka connection may stay without a request before it is closed.",
)
@click.option(
    "--kafka-frame-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a started Kafka request may take to arrive in full (slow clients are cut off).",
)
@click.option(
    "--kafka-auto-create-topics/--no-kafka-auto-create-topics",
    default=True,
    show_default=True,
    help="Create a topic when a Kafka client asks for its metadata or produces to it.",
)
@click.option(
    "--kafka-admin/--no-kafka-admin",
    default=True,
    show_default=True,
    help="Serve the Kafka SDK's HTTP admin API (/v1/topics, /v1/cluster, consumer-group lag, "
    "/v1/inspect) on the HTTP port.",
)
@click.option(
    "--http-fast-path/--no-http-fast-path",
    default=True,
    show_default=True,
    envvar="MILLSTREAM_HTTP_FAST_PATH",
    help="Answer appends, catch-up reads and HEADs in millstream's own HTTP protocol instead "
    "of through ASGI (same responses, less CPU per request).",
)
@llm_options
@click.pass_context
def serve_command(
    ctx: click.Context,
    /,
    host: str,
    port: int,
    data_dir: Path,
    memory: bool,
    long_poll_timeout: float,
    fsync: str,
    max_body_size: int,
    subscriptions: bool,
    sentinel: bool,
    kafka_port: int,
    kafka_advertised_host: str | None,
    no_kafka: bool,
    kafka_max_request_size: int,
    kafka_idle_timeout: float,
    kafka_frame_timeout: float,
    kafka_auto_create_topics: bool,
    kafka_admin: bool,
    http_fast_path: bool,
    **llm: Any,
) -> None:
    """Run millstream: streams at http://HOST:PORT/v1/stream/<path>, Kafka at HOST:KAFKA-PORT.

    Prints one line, "millstream listening on http://HOST:PORT and kafka://HOST:PORT (store:
    ...)", once both doors accept connections; the services' lines (the LLM gateway's models,
    or that no provider key is set) come before it. SIGTERM finishes in-flight appends and
    produces, ends live readers and parked fetches, and exits 0.
    """
    explicit_dir = ctx.get_parameter_source("data_dir") == click.core.ParameterSource.COMMANDLINE
    if memory and explicit_dir:
        raise click.UsageError("--memory and --data-dir exclude each other")
    llm_config = gateway_config(llm)
    store = _open_store(memory, data_dir, fsync)
    from millstream.node import NodeOptions, run  # here: the client commands start faster

    options = NodeOptions(
        host=host,
        port=port,
        long_poll_timeout=long_poll_timeout,
        max_body_size=max_body_size,
        http_fast_path=http_fast_path,
        kafka=not no_kafka,
        kafka_port=kafka_port,
        kafka_advertised_host=kafka_advertised_host,
        kafka_max_request_size=kafka_max_request_size,
        kafka_idle_timeout=kafka_idle_timeout,
        kafka_frame_timeout=kafka_frame_timeout,
        kafka_auto_create_topics=kafka_auto_create_topics,
        subscriptions=subscriptions,
        kafka_admin=kafka_admin,
        sentinel=sentinel,
        llm=llm_config,
    )
    sys.exit(run(store, options))
