"""Scale-out: 1, 2 and 3 millstream nodes on one PostgreSQL, next to one SQLite node, in one run.

    .venv/bin/python -m benchmarks.cluster [--rounds 2] [--seconds 5] [--writers 64]
                                           [--samples 200] [--kafka-messages 20000]

Starts a throwaway PostgreSQL (``tests/postgres.py``: initdb + pg_ctl, as ``nobody`` when
root), then, ``--rounds`` times and in alternating order, starts each setup's nodes
(``millstream serve --store postgresql://...`` on one fresh database, or ``--data-dir``),
measures, and stops them:

- durable appends: ``--writers`` concurrent writers spread round-robin over the nodes, each
  appending 100-byte messages to its own stream over its own keep-alive connection
  (``scenarios/_http1.py``) and awaiting each answer: msg/s;
- append → live delivery: one SSE reader on the *last* node (another node than the writer's,
  when there are several) and one writer on the first node appending every 10 ms: p50/p99 from
  sending the POST to the SSE event arriving (one clock: same machine);
- Kafka: an idempotent librdkafka producer (acks=all, linger 5 ms) bootstrapped on every node
  sends ``--kafka-messages`` 100-byte records to a 6-partition topic (each partition to its
  leader): msg/s until all are acknowledged; then one consumer reads them all back: msg/s.

CPU seconds of the load generator (this process), the nodes and PostgreSQL are read from
``/proc`` per phase and printed as shares of one core beside the append rate: on the 2-core
benchmark machine they say what limits it. Prints each round, then a table of medians with each
setup's ratio to the SQLite node. Figures on a shared machine are noisy: quote them with the
command and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from postgres import PostgresServer  # noqa: E402

from benchmarks.scenarios._http1 import Connection  # noqa: E402
from servers import ServerProcess, millstream_argv  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry.name))
    return out


@dataclass
class Cpu:
    """CPU shares (of one core) of the load generator, the nodes and PostgreSQL in a phase."""

    client: float = 0.0
    nodes: float = 0.0
    postgres: float = 0.0

    def __str__(self) -> str:
        return f"cpu client {self.client:.0%} nodes {self.nodes:.0%} pg {self.postgres:.0%}"


@contextmanager
def measured(nodes: list[ServerProcess], pg: PostgresServer | None, out: Cpu) -> Iterator[None]:
    postmaster = _postmaster(pg)
    pg_pids = [postmaster, *_children(postmaster)] if postmaster else []

    def sample() -> tuple[float, float, float]:
        usage = os.times()
        return (
            usage.user + usage.system,
            sum(_cpu_seconds(n.process.pid) for n in nodes),
            sum(_cpu_seconds(p) for p in pg_pids),
        )

    before, t0 = sample(), time.monotonic()
    yield
    after, wall = sample(), time.monotonic() - t0
    out.client, out.nodes, out.postgres = (
        (a - b) / wall for a, b in zip(after, before, strict=True)
    )


def _postmaster(pg: PostgresServer | None) -> int | None:
    if pg is None:
        return None
    try:
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def appends(urls: list[str], writers: int, seconds: float) -> float:
    connections = [Connection(urls[i % len(urls)]) for i in range(writers)]
    text = {"Content-Type": "text/plain"}
    for i, connection in enumerate(connections):
        created = await connection.request("PUT", f"/v1/stream/w{i}", headers=text)
        assert created.status in (200, 201), created.status
    body = b"x" * 100
    done = 0
    stop = time.monotonic() + seconds

    async def writer(i: int) -> None:
        nonlocal done
        connection = connections[i]
        while time.monotonic() < stop:
            answer = await connection.request("POST", f"/v1/stream/w{i}", body, text)
            assert answer.status == 204, (answer.status, answer.body[:200])
            done += 1

    t0 = time.monotonic()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    rate = done / (time.monotonic() - t0)
    for connection in connections:
        connection.close()
    return rate


async def delivery(urls: list[str], samples: int) -> tuple[float, float]:
    write_url, read_url = urls[0], urls[-1]
    path = f"/v1/stream/lat-{os.getpid()}-{time.monotonic_ns()}"
    text = {"Content-Type": "text/plain"}
    latencies: list[float] = []
    writer = Connection(write_url)
    created = await writer.request("PUT", path, headers=text)
    assert created.status == 201, created.status
    sent: dict[str, float] = {}
    ready = asyncio.Event()
    async with aiohttp.ClientSession() as session:

        async def reader() -> None:
            params = {"offset": "-1", "live": "sse"}
            async with session.get(read_url + path, params=params, timeout=None) as r:
                kind = ""
                ready.set()
                async for raw in r.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "data":
                        now = time.perf_counter()
                        for token in line[5:].split("|"):
                            if token in sent:
                                latencies.append(now - sent.pop(token))
                        if len(latencies) >= samples:
                            return

        task = asyncio.ensure_future(reader())
        await ready.wait()
        await asyncio.sleep(0.3)
        for i in range(samples):
            sent[str(i)] = time.perf_counter()
            answer = await writer.request("POST", path, f"{i}|".encode(), text)
            assert answer.status == 204, answer.status
            await asyncio.sleep(0.01)
            if task.done():
                break
        await asyncio.wait_for(task, 30)
    writer.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return p50, p99


def kafka(bootstraps: list[str], messages: int, topic: str) -> tuple[float, float]:
    """Produce ``messages`` records (idempotent, acks=all) and consume them back: msg/s each."""
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    everyone = ",".join(bootstraps)
    partitions = 6
    admin = AdminClient({"bootstrap.servers": everyone})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": everyone, "enable.idempotence": True, "acks": "all",
         "linger.ms": 5, "queue.buffering.max.messages": messages + 1000}
    )  # fmt: skip
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    producer.poll(0)
    producer.list_topics(topic, timeout=30)  # metadata first: not part of the rate
    value = b"k" * 100
    t0 = time.monotonic()
    for i in range(messages):
        producer.produce(topic, value=value, key=b"%d" % i, on_delivery=delivered)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "records left unacknowledged"
    produce_rate = messages / (time.monotonic() - t0)
    assert not failures, failures[:3]

    consumer = Consumer(
        {"bootstrap.servers": everyone, "group.id": f"bench-{topic}",
         "enable.auto.commit": False, "fetch.min.bytes": 1}
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, k, 0) for k in range(partitions)])
    got = 0
    t0 = time.monotonic()
    deadline = t0 + 120
    while got < messages and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if not message.error():
                got += 1
    consume_rate = got / (time.monotonic() - t0)
    consumer.close()
    assert got == messages, (got, messages)
    return produce_rate, consume_rate


@dataclass
class Result:
    rate: float
    p50: float
    p99: float
    produce: float
    consume: float
    cpu: Cpu = field(default_factory=Cpu)

    def cpu_per_append(self, who: str) -> float:
        """CPU microseconds of ``who`` (``nodes`` or ``postgres``) per durable append."""
        share: float = getattr(self.cpu, who)
        return share * 1e6 / self.rate if self.rate else 0.0


def run_setup(
    name: str, start: Callable[[], list[ServerProcess]], pg: PostgresServer | None, opts: Any
) -> Result:
    nodes = start()
    try:
        urls = [node.url for node in nodes]
        cpu = Cpu()
        with measured(nodes, pg, cpu):
            rate = asyncio.run(appends(urls, opts.writers, opts.seconds))
        p50, p99 = asyncio.run(delivery(urls, opts.samples))
        produce, consume = kafka(
            [node.kafka for node in nodes], opts.kafka_messages, f"bench-{time.monotonic_ns()}"
        )
    finally:
        for node in nodes:
            node.terminate()
    result = Result(rate, p50, p99, produce, consume, cpu)
    print(
        f"{name}: appends {rate:,.0f} msg/s ({cpu}), delivery p50 {p50:.2f} ms p99 "
        f"{p99:.2f} ms, kafka produce {produce:,.0f} msg/s consume {consume:,.0f} msg/s",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--kafka-messages", type=int, default=20_000)
    opts = parser.parse_args()
    pg = PostgresServer()
    names = ["sqlite, 1 node", *(f"postgresql, {n} node{'s' * (n > 1)}" for n in (1, 2, 3))]
    results: dict[str, list[Result]] = {name: [] for name in names}
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as work:
            for round_ in range(opts.rounds):
                order = names if round_ % 2 == 0 else names[::-1]
                print(f"-- round {round_ + 1}", flush=True)
                for name in order:
                    if name.startswith("sqlite"):
                        data = Path(work) / f"data-{round_}"
                        argv = millstream_argv("--data-dir", str(data))
                        count, server = 1, None
                    else:
                        count, server = int(name.split(", ")[1][0]), pg
                        argv = millstream_argv("--store", pg.database("bench"))

                    def start(argv: list[str] = argv, count: int = count) -> list[ServerProcess]:
                        return [ServerProcess(argv) for _ in range(count)]

                    results[name].append(run_setup(name, start, server, opts))
    finally:
        pg.close()
    load = os.getloadavg()
    print(f"\n### scale-out ({time.monotonic() - started:.0f} s, load avg {load[0]:.1f}, "
          f"{os.cpu_count()} cores, medians of {opts.rounds} rounds)\n")  # fmt: skip
    print(f"Command: `python -m benchmarks.cluster --rounds {opts.rounds} --seconds "
          f"{opts.seconds:g} --writers {opts.writers} --samples {opts.samples} "
          f"--kafka-messages {opts.kafka_messages}`\n")  # fmt: skip
    print("| setup | durable appends msg/s | ÷ sqlite node | delivery p50 ms | p99 ms | "
          "Kafka produce msg/s | Kafka consume msg/s | cpu client / nodes / pg | "
          "CPU µs per append: nodes + pg |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    base = statistics.median(r.rate for r in results[names[0]])
    for name in names:
        rows = results[name]
        rate = statistics.median(r.rate for r in rows)
        cpu = rows[-1].cpu
        print(
            f"| {name} | {rate:,.0f} | {rate / base:.2f}× "
            f"| {statistics.median(r.p50 for r in rows):.2f} "
            f"| {statistics.median(r.p99 for r in rows):.2f} "
            f"| {statistics.median(r.produce for r in rows):,.0f} "
            f"| {statistics.median(r.consume for r in rows):,.0f} "
            f"| {cpu.client:.0%} / {cpu.nodes:.0%} / {cpu.postgres:.0%} "
            f"| {statistics.median(r.cpu_per_append('nodes') for r in rows):.0f} + "
            f"{statistics.median(r.cpu_per_append('postgres') for r in rows):.0f} |"
        )
    version = subprocess.run(
        [str(pg.bindir / "postgres"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    print(f"\n{version}; delivery with several nodes is cross-node (writer on the first, "
          "reader on the last). CPU shares are of one core, during the appends of the last "
          "round; CPU per append is the median over rounds.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
