"""What authentication and TLS cost: appends and reads against ``millstream serve`` with both
off, tokens required, TLS, and both on, side by side in one run.

``python -m benchmarks.security [--rounds 3] [--appends 20000] [--reads 4000] [--records 20000]``

Four servers run at once (``--memory``, so the HTTP and auth layers are all there is to
measure; with tokens required the client sends the ``admin:`` token ``serve`` prints at start,
which every request is checked against), and the measurements take turns: round after round,
each scenario against each server, so every server sees the same machine load. Figures are the
medians over the rounds:

- ``append-64``: 64 keep-alive connections appending 100-byte messages to one stream;
- ``get-1k-16``: 16 connections reading a 1,000-message JSON stream from the beginning;
- ``kafka-produce``: aiokafka producing 100-byte records (``acks=1``, no linger), SASL
  (SCRAM-SHA-256) as the same token when tokens are required; figures are per record;
- ``kafka-fetch``: an aiokafka consumer reading those records from the start.

With tokens required the servers also get Kafka quotas too large to bite
(``--kafka-produce-byte-rate``/``--kafka-fetch-byte-rate``): a connection with quotas goes
through the per-request authorization wrappers (``server/kafka/_authz.py``) even as ``admin:``,
so the Kafka figures are what a scoped token pays, checks and quota accounting included.

For each: requests per second and the server's CPU per request (user+system seconds from
``/proc`` ÷ requests; on a shared machine this moves far less than throughput). Costs are
``1 - variant ÷ off``. The load generator is this process (uvloop and the lean HTTP/1.1 client
of ``scenarios/_http1.py``), with its own CPU share shown. Results go to
``benchmarks/results/<date>-security.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import ssl
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.scenarios._http1 import Connection

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import ServerProcess, millstream_argv  # noqa: E402
from tlsfiles import make_tls_files  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b"x" * 100
# quotas no benchmark reaches (1 TB/s), so that Kafka requests take the checked handlers
_UNBITING_QUOTAS = ["--kafka-produce-byte-rate", "1e12", "--kafka-fetch-byte-rate", "1e12"]


@dataclass
class Variant:
    name: str
    args: list[str]
    tls: bool
    auth: bool
    server: ServerProcess | None = None
    token: str = ""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(
    variant: Variant, context: Any, connections: int, total: int, make: Any
) -> tuple[float, float, float]:
    """``total`` requests over ``connections`` connections: (req/s, server µs CPU/request,
    this process's CPU share)."""
    assert variant.server is not None
    headers = {"Authorization": f"Bearer {variant.token}"} if variant.auth else {}
    pool = [Connection(variant.server.url, context) for _ in range(connections)]
    for connection in pool:  # connect (and handshake) before measuring
        await connection.request("HEAD", "/v1/stream/bench", headers=headers)
    remaining = [total]

    async def worker(connection: Connection) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            method, path, body, extra = make()
            response = await connection.request(method, path, body, {**headers, **extra})
            if response.status >= 300:
                raise RuntimeError(f"{variant.name}: {method} {path} answered {response.status}")

    pid = variant.server.process.pid
    cpu_before, own_before = _cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in pool))
    figures = _figures(pid, total, started, cpu_before, own_before)
    for connection in pool:
        connection.close()
    return figures


def _kafka_login(variant: Variant, context: Any) -> dict[str, Any]:
    protocol = ("SASL_" if variant.auth else "") + ("SSL" if variant.tls else "PLAINTEXT")
    login: dict[str, Any] = {"security_protocol": protocol}
    if variant.tls:
        login["ssl_context"] = context
    if variant.auth:
        login |= {
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": "admin",
            "sasl_plain_password": variant.token,
        }
    return login


async def _kafka(variant: Variant, context: Any, records: int) -> list[tuple[float, float, float]]:
    """Produce ``records`` to a new topic, then read them back: figures per record for each."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    assert variant.server is not None
    login = _kafka_login(variant, context)
    topic = f"bench-{os.urandom(4).hex()}"
    pid = variant.server.process.pid
    producer = AIOKafkaProducer(
        bootstrap_servers=variant.server.kafka, acks=1, linger_ms=0, **login
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, PAYLOAD)  # connect, log in, create the topic
        cpu_before, own_before = _cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        sent = [await producer.send(topic, PAYLOAD) for _ in range(records - 1)]
        await asyncio.gather(*sent)
        produced = _figures(pid, records - 1, started, cpu_before, own_before)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=variant.server.kafka, auto_offset_reset="earliest", **login
    )
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=0)  # connect and log in before measuring
        cpu_before, own_before = _cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        seen = 0
        while seen < records:
            batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            if not batches:
                raise RuntimeError(f"{variant.name}: the consumer read {seen} of {records}")
            seen += sum(len(batch) for batch in batches.values())
        fetched = _figures(pid, seen, started, cpu_before, own_before)
    finally:
        await consumer.stop()
    return [produced, fetched]


def _figures(
    pid: int, count: int, started: float, cpu_before: float, own_before: float
) -> tuple[float, float, float]:
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu_before
    own = time.process_time() - own_before
    return count / elapsed, cpu / count * 1e6, own / elapsed


def _append() -> tuple[str, str, bytes, dict[str, str]]:
    return "POST", "/v1/stream/bench", PAYLOAD, {"Content-Type": "application/octet-stream"}


def _read() -> tuple[str, str, bytes, dict[str, str]]:
    return "GET", "/v1/stream/reads?offset=-1", b"", {}


async def _prepare(variant: Variant, context: Any) -> None:
    assert variant.server is not None
    headers = {"Authorization": f"Bearer {variant.token}"} if variant.auth else {}
    connection = Connection(variant.server.url, context)
    for path, content_type in (
        ("bench", "application/octet-stream"),
        ("reads", "application/json"),
    ):
        await connection.request(
            "PUT", f"/v1/stream/{path}", b"", {**headers, "Content-Type": content_type}
        )
    for _ in range(10):
        batch = b"[" + b",".join(b'{"n":%d,"text":"hello world"}' % i for i in range(100)) + b"]"
        await connection.request(
            "POST", "/v1/stream/reads", batch, {**headers, "Content-Type": "application/json"}
        )
    connection.close()


def _start(variant: Variant, scratch: Path) -> None:
    argv = millstream_argv("--memory", "--no-llm", "--no-subscriptions", *variant.args)
    variant.server = ServerProcess(argv)
    if variant.auth:
        variant.token = next(
            line.split()[-1] for line in variant.server.output if line.startswith("admin token")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=4_000)
    parser.add_argument("--records", type=int, default=20_000, help="Kafka records per round")
    parser.add_argument("--no-write", action="store_true", help="do not write results/")
    options = parser.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        ca = make_tls_files(Path(folder))
        context = ssl.create_default_context(cafile=str(ca.ca))
        tls = ["--tls-cert", str(ca.server_cert), "--tls-key", str(ca.server_key)]
        auth = ["--require-auth", *_UNBITING_QUOTAS]
        variants = [
            Variant("off", [], tls=False, auth=False),
            Variant("auth", auth, tls=False, auth=True),
            Variant("tls", tls, tls=True, auth=False),
            Variant("auth+tls", [*auth, *tls], tls=True, auth=True),
        ]
        for variant in variants:
            _start(variant, Path(folder))
            assert variant.server is not None
            stack.callback(variant.server.terminate)
        runner = uvloop.run if hasattr(uvloop, "run") else asyncio.run
        results = runner(_measure(variants, context, options))
    _report(results, options)


async def _measure(
    variants: list[Variant], context: Any, options: argparse.Namespace
) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    for variant in variants:
        await _prepare(variant, context if variant.tls else None)
    scenarios = {
        "append-64": (64, options.appends, _append),
        "get-1k-16": (16, options.reads, _read),
    }
    kafka = ("kafka-produce", "kafka-fetch")
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        s: {v.name: [] for v in variants} for s in [*scenarios, *kafka]
    }

    def record(scenario: str, variant: Variant, figures: tuple[float, float, float]) -> None:
        results[scenario][variant.name].append(figures)
        print(
            f"round {round_number + 1} {scenario:13} {variant.name:9} "
            f"{figures[0]:9,.0f} req/s  {figures[1]:6.1f} µs CPU/req  "
            f"(load generator {figures[2]:.0%})",
            flush=True,
        )

    for round_number in range(options.rounds):
        order = variants if round_number % 2 == 0 else list(reversed(variants))
        for scenario, (connections, total, make) in scenarios.items():
            for variant in order:
                context_or_none = context if variant.tls else None
                figures = await _drive(variant, context_or_none, connections, total, make)
                record(scenario, variant, figures)
        for variant in order:
            for scenario, figures in zip(
                kafka, await _kafka(variant, context, options.records), strict=True
            ):
                record(scenario, variant, figures)
    return results


def _ratio(value: float, base: float) -> str:
    return f"{value / base - 1:+.1%}" if base else "n/a"


def _report(
    results: dict[str, dict[str, list[tuple[float, float, float]]]], options: argparse.Namespace
) -> None:
    when = dt.datetime.now(dt.UTC)
    lines = [
        f"### millstream security benchmark, {when:%Y-%m-%dT%H:%M:%S}+00:00, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
        "",
        f"Command: `python -m benchmarks.security --rounds {options.rounds} --appends "
        f"{options.appends} --reads {options.reads} --records {options.records}` "
        f"(medians of {options.rounds} rounds; Kafka figures per record).",
        "",
        "| scenario | variant | req/s | µs server CPU/req | throughput vs off | CPU/req vs off |",
        "|---|---|---:|---:|---:|---:|",
    ]
    summary: dict[str, Any] = {}
    for scenario, by_variant in results.items():
        base_rate = statistics.median(f[0] for f in by_variant["off"])
        base_cpu = statistics.median(f[1] for f in by_variant["off"])
        for name, runs in by_variant.items():
            rate = statistics.median(f[0] for f in runs)
            cpu = statistics.median(f[1] for f in runs)
            summary[f"{scenario}/{name}"] = {"req_s": rate, "cpu_us": cpu, "runs": runs}
            lines.append(
                f"| {scenario} | {name} | {rate:,.0f} | {cpu:.1f} | "
                f"{_ratio(rate, base_rate)} | {_ratio(cpu, base_cpu)} |"
            )
    text = "\n".join(lines)
    print()
    print(text)
    if not options.no_write:
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"{when:%Y-%m-%dT%H%M%S}-security"
        stem.with_suffix(".md").write_text(text + "\n")
        stem.with_suffix(".json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        print(f"\nwritten to {stem}.md and .json")


if __name__ == "__main__":
    main()
