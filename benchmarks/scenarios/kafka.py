"""The Kafka protocol: the scenarios every Kafka broker in the run faces, driven by librdkafka.

The load generator is confluent-kafka (librdkafka) with ``acks=all``, run in a worker thread of
the load-generator process (the client is blocking; the thread stops when the scenario's time
runs out). Each scenario creates its own topics (``bench-<run>-...``; set-up is never
measured) and checks everything it gets back: every delivery report is error-free and the
acknowledged offsets of each partition are 0, 1, 2, ... in produce order; a consumer receives
every record exactly once, in offset order, with the value that was produced at that offset;
the end-to-end reader gets exactly the record just produced; a rebalance hands out every
partition to exactly one member.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks._model import (
    Context,
    Figure,
    Meter,
    Outcome,
    Scenario,
    ScenarioFailed,
    Tally,
    read_rss_bytes,
    register,
)
from benchmarks.scenarios._stats import percentile

__all__ = ["PROTOCOL"]

PROTOCOL = "kafka"
MIB = 1024 * 1024
_RUN = f"{time.time_ns() % 10**10:010d}"
_INDEX = 10  # a value starts with its produce index in 10 digits, then padding
T = TypeVar("T")


def _topic(name: str) -> str:
    return f"bench-{_RUN}-{name}"


def _value(i: int, size: int) -> bytes:
    """A ``size``-byte record value naming its produce index, so a reader can check it."""
    return (b"%010d" % i).ljust(size, b".")


def _client(target: str, **extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": target, "client.id": "millstream-bench", **extra}


def _producer(target: str, **extra: Any) -> Producer:
    """librdkafka's producer with ``acks=all``, otherwise its defaults unless ``extra`` says."""
    return Producer(_client(target, acks="all", **extra))


def _consumer(target: str, group: str, **extra: Any) -> Consumer:
    return Consumer(
        _client(
            target,
            **{
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **extra,
            },
        )
    )


def _create_topic(target: str, name: str, partitions: int) -> None:
    """Create ``name`` and wait until a client's metadata shows every partition (set-up)."""
    admin = AdminClient(_client(target))
    try:
        for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            future.result(30)
    except KafkaException as exc:
        raise ScenarioFailed(f"create topic {name}: {exc}") from exc
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = admin.list_topics(name, timeout=10).topics.get(name)
        if found is not None and found.error is None and len(found.partitions) == partitions:
            return
        time.sleep(0.05)
    raise ScenarioFailed(f"topic {name} has no {partitions} partitions in the metadata")


class _Stopped(ScenarioFailed):
    """The scenario's time ran out (the async side cancelled it); the thread ends."""


async def _in_thread(ctx: Context, work: Callable[[Context, threading.Event], T]) -> T:
    """Run the blocking ``work(ctx, stop)`` in a thread; ``stop`` is set if we are cancelled
    (the scenario timed out), so the thread winds down instead of outliving the run."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(work, ctx, stop)
    finally:
        stop.set()


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise _Stopped("stopped: the scenario ran out of time")


class _RssSampler:
    """The server's peak RSS, sampled every 50 ms from a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, read_rss_bytes(self.pid))
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, read_rss_bytes(self.pid))


# --- throughput ----------------------------------------------------------------------------


class _Acks:
    """Delivery reports of one producer: each partition's offsets must be 0, 1, 2, ..."""

    def __init__(self, partitions: int, tally: Tally) -> None:
        self.next = [0] * partitions
        self.tally = tally
        self.count = 0

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.tally.fail(f"delivery: {err}")
            return
        partition, offset = msg.partition(), msg.offset()
        if offset != self.next[partition]:
            self.tally.fail(f"partition {partition}: acked offset {offset}, expected the next")
        self.next[partition] = offset + 1
        self.count += 1


def _produce(
    ctx: Context, stop: threading.Event, topic: str, partitions: int, count: int, size: int
) -> Meter:
    """Produce ``count`` records round-robin over the partitions and wait for every ack.

    Only failed deliveries are reported back (a Python callback per record would cost the
    load generator about a microsecond each); the consumer phase then reads every partition and
    checks it holds exactly its records, in order. (Not the high watermarks: Tansu 0.6 answers
    ListOffsets "latest" with its last batch's base offset + 1, not the end of the batch.)
    """
    tally = ctx.tally

    def failed(err: Any, msg: Any) -> None:
        tally.fail(f"delivery: {err}")

    producer = _producer(ctx.target, **{"delivery.report.only.error": True, "on_delivery": failed})
    producer.list_topics(topic, timeout=10)  # connected, metadata known: not measured
    produce, poll, padding = producer.produce, producer.poll, b"." * (size - _INDEX)
    meter = Meter(ctx.server_pid)
    with meter.measure():
        for i in range(count):
            value = b"%010d%s" % (i, padding)
            while True:
                try:
                    # positional: keyword arguments cost librdkafka's binding ~0.7 µs more
                    produce(topic, value, None, i % partitions)
                    break
                except BufferError:  # librdkafka's queue is full: serve delivery reports
                    poll(0.005)
                    _check(stop)
            if not i & 1023:
                poll(0)
                _check(stop)
        while producer.flush(0.5):
            _check(stop)
    return meter


def _consume(
    ctx: Context, stop: threading.Event, topic: str, partitions: int, count: int, size: int
) -> Meter:
    """Read every record from offset 0 with one consumer."""
    tally = ctx.tally
    consumer = _consumer(ctx.target, f"bench-{topic}")
    try:
        consumer.list_topics(topic, timeout=10)
        wanted = [TopicPartition(topic, p, 0) for p in range(partitions)]
        expected = [0] * partitions
        received = 0
        meter = Meter(ctx.server_pid)
        with meter.measure():
            consumer.assign(wanted)
            while received < count:
                _check(stop)
                # consume() returns once it has that many, or at the timeout: never ask
                # for more than is left, or the last call would wait out its timeout.
                for message in consumer.consume(min(10_000, count - received), 0.5):
                    if message.error() is not None:
                        tally.fail(f"consume: {message.error()}")
                        continue
                    partition, offset = message.partition(), message.offset()
                    value = message.value()
                    if (
                        offset != expected[partition]
                        or int(value[:_INDEX]) != offset * partitions + partition
                        or len(value) != size
                    ):
                        tally.fail(f"partition {partition}: offset {offset} is not the next")
                    expected[partition] = offset + 1
                    received += 1
    finally:
        consumer.close()
    tally.ok(received)
    return meter


def _merge(total: Meter, phase: Meter) -> None:
    total.wall += phase.wall
    total.own_cpu += phase.own_cpu
    total.server_cpu += phase.server_cpu


async def _throughput(ctx: Context) -> Outcome:
    """Produce ``messages`` records of ``size`` bytes over ``partitions``, then consume them."""
    size, partitions = int(ctx.params["size"]), int(ctx.params["partitions"])
    count = int(ctx.params["messages"])

    def work(ctx: Context, stop: threading.Event) -> Outcome:
        topic = _topic(f"t-{size}-{partitions}")
        _create_topic(ctx.target, topic, partitions)
        with _RssSampler(ctx.server_pid) as rss:
            produced = _produce(ctx, stop, topic, partitions, count, size)
            consumed = _consume(ctx, stop, topic, partitions, count, size)
        _merge(ctx.meter, produced)
        _merge(ctx.meter, consumed)
        values = {
            "produce_msgs_per_s": count / produced.wall if produced.wall else 0.0,
            "consume_msgs_per_s": count / consumed.wall if consumed.wall else 0.0,
        }
        # CPU per record: on a loaded machine a steadier measure of cost than records/s.
        details = {
            "messages": count,
            "bytes_each": size,
            "partitions": partitions,
            "produce_server_cpu_us": round(produced.server_cpu / count * 1e6, 2),
            "produce_loadgen_cpu_us": round(produced.own_cpu / count * 1e6, 2),
            "consume_server_cpu_us": round(consumed.server_cpu / count * 1e6, 2),
            "consume_loadgen_cpu_us": round(consumed.own_cpu / count * 1e6, 2),
        }
        if ctx.params.get("rss"):
            values["rss_mb"] = rss.peak / MIB
        return Outcome(values, details)

    return await _in_thread(ctx, work)


# --- end-to-end latency ----------------------------------------------------------------------


async def _end_to_end(ctx: Context) -> Outcome:
    """One record at a time: produce (acks=all, linger 0) until a live consumer has it;
    ``rounds`` of them, or as many as fit in ``seconds`` (a broker that answers a fetch only at
    its max wait would take minutes otherwise)."""
    rounds, settle = int(ctx.params["rounds"]), float(ctx.params["settle"])
    seconds = float(ctx.params["seconds"])

    def work(ctx: Context, stop: threading.Event) -> Outcome:
        topic = _topic("e2e")
        _create_topic(ctx.target, topic, 1)
        tally = ctx.tally
        producer = _producer(ctx.target, **{"linger.ms": 0})
        acks = _Acks(1, tally)
        consumer = _consumer(ctx.target, f"bench-{topic}")
        times: list[float] = []
        sent = 0
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])  # a new topic: from the start
            deadline = time.monotonic() + seconds
            for i in range(-1, rounds):  # round -1 warms the connections up, unmeasured
                _check(stop)
                if time.monotonic() > deadline:
                    break
                sent += 1
                value = _value(i + 1, 100)
                with ctx.meter.measure():
                    started = time.perf_counter()
                    producer.produce(topic, value, on_delivery=acks)
                    producer.poll(0)
                    arrived = 0.0
                    while not arrived:
                        message = consumer.poll(10)
                        if message is None:
                            tally.fail(f"round {i}: nothing arrived in 10 s")
                            break
                        if message.error() is not None or message.value() != value:
                            tally.fail(f"round {i}: got {message.value()!r:.24}")
                            continue
                        arrived = time.perf_counter()
                if arrived and i >= 0:
                    times.append(arrived - started)
                    tally.ok()
                producer.poll(0)
                time.sleep(settle)
            if producer.flush(10):
                tally.fail("records left unacknowledged")
            elif acks.count != sent:
                tally.fail(f"{acks.count} of {sent} records acknowledged")
        finally:
            consumer.close()
        values = {"p50_ms": percentile(times, 0.5) * 1000, "p99_ms": percentile(times, 0.99) * 1000}
        return Outcome(values, {"rounds": len(times)})

    return await _in_thread(ctx, work)


# --- group rebalance --------------------------------------------------------------------------


class _Member:
    """A group member polling in a thread of its own; keeps its latest assignment and when it
    got it (the rebalance callbacks run inside ``poll``)."""

    def __init__(self, ctx: Context, group: str, topic: str, name: str) -> None:
        self.name = name
        self.assigned: frozenset[int] = frozenset()
        self.assigned_at = 0.0
        self.changed = threading.Condition()
        self._consumer = _consumer(
            ctx.target,
            group,
            **{
                "client.id": name,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 100,
                "partition.assignment.strategy": "range",
            },
        )
        self._stop = threading.Event()
        self._consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)
        self._thread.start()

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        with self.changed:
            self.assigned = frozenset(tp.partition for tp in partitions)
            self.assigned_at = time.perf_counter()
            self.changed.notify_all()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        with self.changed:
            self.assigned = frozenset()
            self.changed.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.02)
        self._consumer.close()  # leaves the group

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _wait_for(
    members: list[_Member], partitions: int, since: float, stop: threading.Event
) -> float:
    """Wait until ``members`` hold every partition between them, each assigned after
    ``since``; returns the time the last of them got its assignment."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _check(stop)
        held = [m.assigned for m in members]
        if (
            all(held)
            and all(m.assigned_at > since for m in members)
            and sum(map(len, held)) == partitions
            and frozenset().union(*held) == frozenset(range(partitions))
        ):
            return max(m.assigned_at for m in members)
        with members[0].changed:
            members[0].changed.wait(0.01)
    raise ScenarioFailed(f"no complete assignment in 30 s: {[sorted(m.assigned) for m in members]}")


async def _rebalance(ctx: Context) -> Outcome:
    """A member joins a one-member group and later leaves it: time until every member holds
    its new share of the 6 partitions (librdkafka, heartbeats every 100 ms)."""
    rounds, partitions = int(ctx.params["rounds"]), 6

    def work(ctx: Context, stop: threading.Event) -> Outcome:
        topic = _topic("group")
        _create_topic(ctx.target, topic, partitions)
        group = f"bench-{topic}"
        joins: list[float] = []
        leaves: list[float] = []
        first = _Member(ctx, group, topic, "first")
        try:
            _wait_for([first], partitions, 0.0, stop)
            for i in range(rounds):
                with ctx.meter.measure():
                    began = time.perf_counter()
                    second = _Member(ctx, group, topic, f"second-{i}")
                    try:
                        joins.append(_wait_for([first, second], partitions, began, stop) - began)
                    finally:
                        began = time.perf_counter()
                        second.close()
                    leaves.append(_wait_for([first], partitions, began, stop) - began)
                ctx.tally.ok(2)
        finally:
            first.close()
        values = {
            "join_ms": percentile(joins, 0.5) * 1000,
            "leave_ms": percentile(leaves, 0.5) * 1000,
        }
        return Outcome(values, {"rounds": rounds, "join_max_ms": max(joins) * 1000})

    return await _in_thread(ctx, work)


# --- registry --------------------------------------------------------------------------------


def _fig(key: str, label: str, unit: str, higher_is_better: bool = True) -> Figure:
    return Figure(key, label, unit, higher_is_better)


def _scenario(
    name: str,
    title: str,
    run: Any,
    figures: tuple[Figure, ...],
    params: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    timeout: tuple[float, float, float] = (60, 120, 240),
    fresh_server: bool = False,
) -> None:
    register(
        Scenario(
            name=name,
            protocol=PROTOCOL,
            title=title,
            figures=figures,
            run=run,
            params=dict(zip(("smoke", "quick", "full"), params, strict=True)),
            timeout=dict(zip(("smoke", "quick", "full"), timeout, strict=True)),
            fresh_server=fresh_server,
        )
    )


for _size, _label, _quick, _full in (
    (100, "100 B", 100_000, 500_000),
    (1024, "1 KiB", 40_000, 200_000),
):
    for _partitions in (1, 6):
        _where = f"{_label}, {_partitions} partition{'s' if _partitions > 1 else ''}"
        _rss = _size == 1024 and _partitions == 6  # the largest run, on a server of its own
        _figures = (
            _fig("produce_msgs_per_s", f"Kafka produce {_where}", "msg/s"),
            _fig("consume_msgs_per_s", f"Kafka consume {_where}", "msg/s"),
        )
        if _rss:
            _figures += (_fig("rss_mb", f"server RSS peak, Kafka {_where}", "MiB", False),)
        _common = {"size": _size, "partitions": _partitions, "rss": _rss}
        _scenario(
            f"kafka-{'1k' if _size == 1024 else '100b'}-{_partitions}p",
            f"produce then consume {_where} (acks=all)",
            _throughput,
            _figures,
            (
                {**_common, "messages": 2000},
                {**_common, "messages": _quick},
                _common | {"messages": _full},
            ),
            fresh_server=_rss,
        )
_scenario(
    "kafka-e2e",
    "produce → live consumer, one record at a time",
    _end_to_end,
    (
        _fig("p50_ms", "Kafka produce → consume p50", "ms", False),
        _fig("p99_ms", "Kafka produce → consume p99", "ms", False),
    ),
    (
        {"rounds": 20, "settle": 0.002, "seconds": 5},
        {"rounds": 300, "settle": 0.002, "seconds": 10},
        {"rounds": 2000, "settle": 0.002, "seconds": 20},
    ),
)
_scenario(
    "kafka-rebalance",
    "a second group member joins, then leaves (6 partitions)",
    _rebalance,
    (
        _fig("join_ms", "group rebalance, member joins, p50", "ms", False),
        _fig("leave_ms", "group rebalance, member leaves, p50", "ms", False),
    ),
    ({"rounds": 1}, {"rounds": 3}, {"rounds": 5}),
)
del _size, _label, _quick, _full, _partitions, _where, _rss, _figures, _common
