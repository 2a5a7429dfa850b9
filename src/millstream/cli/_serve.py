"""``millstream serve``: a node on the embedded store, zero configuration: the Durable Streams
HTTP door, the Kafka door and the services (``millstream.node``).

Every option also comes from a ``MILLSTREAM_*`` variable or a TOML file (``_config``). This
module imports nothing of the server until the command runs, so ``millstream --help`` and the
client commands work with the SDK alone; ``serve`` without the ``server`` extra says what to
install.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import click

from . import main
from ._config import configurable, effective_settings, format_settings
from ._datadir import open_postgres
from ._serve_llm import gateway_config, llm_options

if TYPE_CHECKING:
    from millstream.log import Store

__all__ = ["serve_command", "server_dependencies_missing"]

FsyncPolicy = Literal["always", "interval", "never"]

#: The servers' defaults, written here so that this module imports no server code (a test pins
#: them to ``server.http.DEFAULT_MAX_BODY_SIZE`` and ``server.kafka.DEFAULT_MAX_REQUEST_SIZE``).
DEFAULT_MAX_BODY_SIZE = 64 << 20
DEFAULT_MAX_REQUEST_SIZE = 100 * 1024 * 1024
#: Modules ``serve`` needs beyond the SDK: the ``server`` extra.
SERVER_MODULES = ("uvicorn", "crc32c", "cramjam", "prometheus_client", "aiohttp", "rich")

_FSYNC_HELP = (
    "When appends reach the disk (SQLite store only; every mode survives kill -9 of the "
    "process). always (default): a 2xx means the data is fsynced, so it also survives power "
    "loss; concurrent appends share one fsync. interval: fsync at most every ~100 ms; an OS "
    "crash or power loss can lose the last ~100 ms of acknowledged appends. never: the OS "
    "decides; an OS crash or power loss can lose acknowledged appends and, rarely, corrupt the "
    "database file."
)


def server_dependencies_missing() -> list[str]:
    """The ``server`` extra's modules that are not installed."""
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def _open_store(memory: bool, data_dir: Path, fsync: str, url: str | None) -> Store:
    from millstream.log import MemoryStore, SqliteStore

    if url is not None:
        return open_postgres(url)
    if memory:
        return MemoryStore()
    data_dir.mkdir(parents=True, exist_ok=True)
    store: Store = SqliteStore(data_dir, fsync=cast(FsyncPolicy, fsync))
    return store


@main.command("serve")
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the effective settings as TOML (with where each came from, secrets masked) "
    "and exit.",
)
@configurable
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. Beyond loopback, tokens must be required (--require-auth) "
    "or --insecure given.",
)
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
    "--store",
    metavar="postgresql://USER@HOST:PORT/DATABASE",
    help="Keep the log in PostgreSQL, shared with every node given the same URL (scale-out: "
    "docs/scale-out.md; needs pip install 'millstream[postgres]').",
)
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
    "--node-name",
    help="This node's name in a cluster (--store): leases and /health show it "
    "[default: HOST-PID-RANDOM].",
)
@click.option(
    "--cluster-ttl",
    type=click.FloatRange(min=0.5),
    default=6.0,
    show_default=True,
    help="Seconds after which a node of a cluster that stopped heartbeating is out: its Kafka "
    "partitions and groups and the services it ran move to the others.",
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
@click.option("--kafka/--no-kafka", default=True, show_default=True, help="Run the Kafka door.")
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
    help="Answer appends, catch-up reads and HEADs in millstream's own HTTP protocol instead "
    "of through ASGI (same responses, less CPU per request).",
)
@click.option(
    "--require-auth",
    is_flag=True,
    help="Refuse requests and Kafka connections without a token (millstream tokens create). "
    "With --memory, an admin token is created at start and printed.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Listen beyond loopback without requiring tokens (anyone who can connect can read, "
    "append and delete).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="PEM certificate (chain): both doors speak TLS (needs --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="PEM private key of --tls-cert.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="HTTP requests per second per token, answered 429 with Retry-After beyond it "
    "(0: no limit).",
)
@click.option(
    "--rate-burst",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Requests a token may send at once above --rate-limit (0: twice the rate).",
)
@click.option(
    "--max-live-readers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="SSE and long-poll readers one token may have open (0: no cap).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Kafka connections one token may have open (0: no cap).",
)
@click.option(
    "--kafka-produce-byte-rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Kafka quota: bytes per second a token may produce; beyond it answers carry "
    "throttle_time_ms and the connection pauses (0: no quota).",
)
@click.option(
    "--kafka-fetch-byte-rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Kafka quota: bytes per second a token may fetch (0: no quota).",
)
@click.option(
    "--auth-failure-rate",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Failed authentications per second one client address may make (after a burst of "
    "--auth-failure-burst) before it is refused with 429 (0: no limit).",
)
@click.option(
    "--auth-failure-burst",
    type=click.FloatRange(min=1),
    default=20.0,
    show_default=True,
    help="Failed authentications one client address may make at once.",
)
@click.option(
    "--metrics/--no-metrics",
    default=True,
    show_default=True,
    help="Serve Prometheus metrics at /metrics (a token with metrics: or admin: when tokens "
    "are required).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text or as one JSON object each (with request ids).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="The least severe log lines shown.",
)
@click.option(
    "--access-log", is_flag=True, help="Log every HTTP request (method, path, status, time)."
)
@click.option(
    "--otel",
    is_flag=True,
    help="Trace requests with OpenTelemetry (pip install 'millstream[otel]'; OTLP to "
    "OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_TRACES_EXPORTER=console). Turns the HTTP fast "
    "path off.",
)
@llm_options
@click.pass_context
def serve_command(ctx: click.Context, /, print_config: bool, **settings: Any) -> None:
    """Run millstream: streams at http://HOST:PORT/v1/stream/<path>, Kafka at HOST:KAFKA-PORT.

    Prints one line, "millstream listening on http://HOST:PORT and kafka://HOST:PORT (store:
    ...)", once both doors accept connections; the services' lines (the LLM gateway's models,
    or that no provider key is set) come before it. SIGTERM finishes in-flight appends and
    produces, ends live readers and parked fetches, and exits 0. Every option can also be set
    with MILLSTREAM_<OPTION> or in a --config file (docs/operations.md).
    """
    if print_config:
        click.echo(format_settings(effective_settings(ctx)))
        return
    missing = server_dependencies_missing()
    if missing:
        raise click.ClickException(
            "millstream serve needs the server extra: pip install 'millstream[server]' "
            f"(missing: {', '.join(missing)})"
        )
    source = ctx.get_parameter_source("data_dir")
    explicit_dir = source is not None and source != click.core.ParameterSource.DEFAULT
    if settings["memory"] and explicit_dir:
        raise click.UsageError("--memory and --data-dir exclude each other")
    if settings["store"] is not None and (settings["memory"] or explicit_dir):
        raise click.UsageError("--store excludes --memory and --data-dir")
    if bool(settings["tls_cert"]) != bool(settings["tls_key"]):
        raise click.UsageError("--tls-cert and --tls-key go together")
    llm_config = gateway_config(settings)
    from millstream.auth import AuthLimits
    from millstream.node import NodeOptions, configure_logging, run

    configure_logging(settings["log_format"], settings["log_level"])
    options = NodeOptions(
        host=settings["host"],
        port=settings["port"],
        long_poll_timeout=settings["long_poll_timeout"],
        max_body_size=settings["max_body_size"],
        http_fast_path=settings["http_fast_path"],
        kafka=settings["kafka"],
        kafka_port=settings["kafka_port"],
        kafka_advertised_host=settings["kafka_advertised_host"],
        kafka_max_request_size=settings["kafka_max_request_size"],
        kafka_idle_timeout=settings["kafka_idle_timeout"],
        kafka_frame_timeout=settings["kafka_frame_timeout"],
        kafka_auto_create_topics=settings["kafka_auto_create_topics"],
        subscriptions=settings["subscriptions"],
        node_name=settings["node_name"],
        cluster_ttl=settings["cluster_ttl"],
        kafka_admin=settings["kafka_admin"],
        sentinel=settings["sentinel"],
        llm=llm_config,
        require_auth=settings["require_auth"],
        insecure=settings["insecure"],
        tls_cert=settings["tls_cert"],
        tls_key=settings["tls_key"],
        limits=AuthLimits(
            request_rate=settings["rate_limit"],
            request_burst=settings["rate_burst"],
            max_live_readers=settings["max_live_readers"],
            max_connections=settings["max_connections"],
            produce_byte_rate=settings["kafka_produce_byte_rate"],
            fetch_byte_rate=settings["kafka_fetch_byte_rate"],
            failure_rate=settings["auth_failure_rate"],
            failure_burst=settings["auth_failure_burst"],
        ),
        metrics=settings["metrics"],
        access_log=settings["access_log"],
        bootstrap_token=settings["require_auth"] and settings["memory"],
        otel=settings["otel"],
    )
    store = _open_store(
        settings["memory"], settings["data_dir"], settings["fsync"], settings["store"]
    )
    sys.exit(run(store, options))
