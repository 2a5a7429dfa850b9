"""Durability of the Kafka door: ``kill -9`` a real ``millstream serve`` (SQLite, ``--fsync
always``) while real clients produce and consume, restart it on the same data directory and
ports, several times, and check what the clients were told against what the log holds.

The clients run through the crashes and reconnect by themselves, as an application would:

- kafka-python's default producer (idempotent, acks=all) and confluent-kafka's idempotent
  producer: every acknowledged record is in the log exactly once, at the offset its ack named,
  each partition in produce order, and no record is in it twice (acknowledged or not: retries
  after a crash are recognised by their producer id and sequence, whose state is committed with
  the data).
- confluent-kafka with acks=all, not idempotent (``max.in.flight`` 1, the setting that keeps a
  plain producer in order): every acknowledged record is at the offset its ack named, in
  produce order. At-least-once, precisely: a record may also appear at a lower offset, once
  per attempt whose write became durable but whose ack the crash swallowed; never elsewhere.
- A consumer group of two confluent-kafka members reads one topic throughout, committing each
  record synchronously after processing it. No offset is skipped, and a record is delivered
  again only if it is at or above the group's last acknowledged commit for its partition when
  it is delivered (what was committed is never re-delivered; what was fetched and not yet
  committed may be, once per crash or rebalance).
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from servers import ServerProcess, millstream_argv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CYCLES = 3
PARTITIONS = 3
ACKS_PER_CYCLE = 400  # per producer, before each kill
_KAFKA_PYTHON = Path(__file__).with_name("kill9_kafka_python.py")
_QUICK_RECONNECT = {"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}


class Node:
    """``millstream serve`` on one data directory, restarted on the ports of its first start."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = ("0", "0")
        self.server: ServerProcess | None = None
        self.bootstrap = ""

    def start(self) -> None:
        http, kafka = self.ports
        argv = millstream_argv(
            "--data-dir", str(self.data_dir), "--port", http, "--kafka-port", kafka
        )
        self.server = server = ServerProcess(argv)
        assert server.kafka, "".join(server.output)
        self.bootstrap = server.kafka
        self.ports = (str(server.port), server.kafka.rsplit(":", 1)[1])

    def kill(self) -> None:
        assert self.server is not None
        self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()


@dataclass
class Ledger:
    """What one producer sent and what it was told."""

    name: str
    topic: str
    idempotent: bool
    sent: int = 0
    acked: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # value -> (part, offset)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def value(self, i: int) -> bytes:
        return f"{self.name}-{i:07d}".encode()

    def ack(self, value: bytes, partition: int, offset: int) -> None:
        with self.lock:
            self.acked[value] = (partition, offset)

    def fail(self, value: bytes, error: object) -> None:
        with self.lock:
            self.failed.append(f"{value!r}: {error}")

    @property
    def acks(self) -> int:
        return len(self.acked)


def _index(value: bytes) -> int:
    return int(value.rsplit(b"-", 1)[1])


class ProducerWorker:
    """One confluent-kafka producer in a thread, sending ``name-i`` to partition
    ``i % PARTITIONS`` until stopped, at most 200 records outstanding; then it flushes."""

    def __init__(self, ledger: Ledger, bootstrap: str) -> None:
        self.ledger = ledger
        self.bootstrap = bootstrap
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=ledger.name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.ledger.name} did not finish"

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:  # reported by the test, never lost in the thread
            self.error = exc

    def _produce(self) -> None:
        ledger = self.ledger
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 90_000,
            **_QUICK_RECONNECT,
        }
        if ledger.idempotent:
            config["enable.idempotence"] = True
        else:
            config["max.in.flight.requests.per.connection"] = 1
        producer = Producer(config)

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                ledger.fail(msg.value(), err)
            else:
                ledger.ack(msg.value(), msg.partition(), msg.offset())

        while not self.stop.is_set():
            if len(producer) >= 200:
                producer.poll(0.01)
                continue
            value = ledger.value(ledger.sent)
            producer.produce(
                ledger.topic, value, partition=ledger.sent % PARTITIONS, on_delivery=delivered
            )
            ledger.sent += 1
            producer.poll(0)
        remaining = producer.flush(90)
        assert remaining == 0, f"{ledger.name}: {remaining} records never answered"


class KafkaPythonWorker(ProducerWorker):
    """kafka-python's default producer, in a process of its own (``kill9_kafka_python.py``)."""

    def _produce(self) -> None:
        ledger = self.ledger
        argv = [sys.executable, str(_KAFKA_PYTHON), self.bootstrap, ledger.topic]
        argv += [str(PARTITIONS), ledger.name]
        with subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        ) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            threading.Thread(target=self._stop_child, args=(child,), daemon=True).start()
            for line in child.stdout:
                kind, index, *rest = line.split(maxsplit=3)
                if kind == "A":
                    ledger.ack(ledger.value(int(index)), int(rest[0]), int(rest[1]))
                elif kind == "F":
                    ledger.fail(ledger.value(int(index)), rest[0])
                elif kind == "DONE":
                    ledger.sent = int(index)
            assert child.wait(30) == 0, f"{ledger.name} exited {child.returncode}"

    def _stop_child(self, child: subprocess.Popen[str]) -> None:
        self.stop.wait()
        assert child.stdin is not None
        with contextlib.suppress(OSError):
            child.stdin.write("stop\n")
            child.stdin.close()


class GroupMember:
    """A consumer-group member that commits each record synchronously after reading it. Every
    delivery and every acknowledged commit goes into one shared, time-ordered event list."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str, events: list[Any]):
        self.name = name
        self.events = events
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": name,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
                **_QUICK_RECONNECT,
            }
        )
        self.consumer.subscribe([topic])
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                message = self.consumer.poll(0.1)
                if message is None or message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                self.events.append(("delivered", self.name, partition, offset, message.value()))
                try:
                    self.consumer.commit(message=message, asynchronous=False)
                except KafkaException:
                    continue  # not acknowledged (crash, rebalance): it may be re-delivered
                self.events.append(("committed", self.name, partition, offset + 1, None))
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()


def _create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        future.result(20)


def _read_log(bootstrap: str, topic: str) -> dict[int, list[bytes]]:
    """Every record of ``topic``, per partition, from offset 0 to the high watermark."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{topic}", "enable.auto.commit": False}
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        log: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        deadline = time.monotonic() + 60
        while any(len(log[p]) < ends[p] for p in log) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                records = log[message.partition()]
                assert message.offset() == len(records), "the log has a gap"
                records.append(message.value())
        assert all(len(log[p]) == ends[p] for p in log), (ends, {p: len(v) for p, v in log.items()})
        return log
    finally:
        consumer.close()


def _check_producer(ledger: Ledger, log: dict[int, list[bytes]]) -> None:
    assert not ledger.failed, f"{ledger.name}: deliveries failed: {ledger.failed[:5]}"
    assert ledger.acks == ledger.sent, f"{ledger.name}: {ledger.acks} of {ledger.sent} acked"
    where: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for partition, records in log.items():
        for offset, value in enumerate(records):
            assert value.startswith(ledger.name.encode() + b"-"), (partition, offset, value)
            where[value].append((partition, offset))
    for value, (partition, offset) in ledger.acked.items():
        assert log[partition][offset] == value, f"{value!r} is not at its acked offset"
        if ledger.idempotent:
            assert where[value] == [(partition, offset)], f"{value!r} at {where[value]}"
        else:  # at-least-once: extra copies only from earlier, unacknowledged attempts
            assert all(p == partition and o <= offset for p, o in where[value]), where[value]
    for partition in range(PARTITIONS):
        acked = sorted(
            (offset, _index(value)) for value, (p, offset) in ledger.acked.items() if p == partition
        )
        order = [i for _, i in acked]
        assert order == sorted(order), f"{ledger.name} partition {partition} out of order"
        assert all(i % PARTITIONS == partition for i in order)


def _check_group(events: list[Any], log: dict[int, list[bytes]]) -> int:
    """No offset skipped, nothing committed delivered again; returns the re-deliveries."""
    floor = dict.fromkeys(range(PARTITIONS), 0)
    delivered: dict[int, set[int]] = {p: set() for p in range(PARTITIONS)}
    redelivered = 0
    for kind, member, partition, offset, value in list(events):
        if kind == "committed":
            floor[partition] = max(floor[partition], offset)
            continue
        assert offset >= floor[partition], (
            f"{member} got partition {partition} offset {offset} below the committed {floor}"
        )
        assert value == log[partition][offset]
        assert offset <= max(delivered[partition], default=-1) + 1, "an offset was skipped"
        redelivered += offset in delivered[partition]
        delivered[partition].add(offset)
    for partition, records in log.items():
        assert delivered[partition] == set(range(len(records))), f"partition {partition}"
    return redelivered


def _wait_for_acks(ledgers: list[Ledger], target: dict[str, int], workers: list[Any]) -> None:
    deadline = time.monotonic() + 60
    while any(ledger.acks < target[ledger.name] for ledger in ledgers):
        for worker in workers:
            assert worker.error is None, repr(worker.error)
        assert time.monotonic() < deadline, {ledger.name: ledger.acks for ledger in ledgers}
        time.sleep(0.02)


def test_kill_9_under_producers_and_a_group_then_restart(tmp_path: Path) -> None:
    node = Node(tmp_path / "data")
    node.start()
    ledgers = [
        Ledger("kafka-python", "durable-kp", idempotent=True),
        Ledger("confluent-idem", "durable-ci", idempotent=True),
        Ledger("confluent-acks-all", "durable-ca", idempotent=False),
    ]
    events: list[Any] = []
    producers: list[ProducerWorker] = []
    members: list[GroupMember] = []
    try:
        _create_topics(node.bootstrap, [ledger.topic for ledger in ledgers])
        producers = [
            KafkaPythonWorker(ledgers[0], node.bootstrap),
            ProducerWorker(ledgers[1], node.bootstrap),
            ProducerWorker(ledgers[2], node.bootstrap),
        ]
        members = [
            GroupMember(node.bootstrap, "durable-group", ledgers[0].topic, f"member-{i}", events)
            for i in range(2)
        ]
        for worker in producers:
            worker.start()
        for _ in range(CYCLES):
            target = {ledger.name: ledger.acks + ACKS_PER_CYCLE for ledger in ledgers}
            _wait_for_acks(ledgers, target, [*producers, *members])
            time.sleep(random.uniform(0, 0.1))
            node.kill()
            time.sleep(random.uniform(0.05, 0.3))
            node.start()  # same directory, same ports: the clients reconnect by themselves
        # Each producer gets records acknowledged by the last incarnation, then stops.
        target = {ledger.name: ledger.acks + 100 for ledger in ledgers}
        _wait_for_acks(ledgers, target, [*producers, *members])
        for worker in producers:
            worker.stop.set()
        for worker in producers:
            worker.join(120)
            assert worker.error is None, f"{worker.ledger.name}: {worker.error!r}"

        logs = {ledger.topic: _read_log(node.bootstrap, ledger.topic) for ledger in ledgers}
        for ledger in ledgers:
            _check_producer(ledger, logs[ledger.topic])

        group_log = logs[ledgers[0].topic]
        total = sum(map(len, group_log.values()))
        deadline = time.monotonic() + 60
        while len({(e[2], e[3]) for e in list(events) if e[0] == "delivered"}) < total:
            assert time.monotonic() < deadline, "the group did not catch up"
            assert all(m.error is None for m in members), [m.error for m in members]
            time.sleep(0.05)
        for member in members:
            member.stop.set()
        for member in members:
            member.thread.join(30)
            assert member.error is None, repr(member.error)
        redelivered = _check_group(events, group_log)
        print(
            f"\n{CYCLES} kill -9 cycles: "
            + ", ".join(f"{ledger.name} {ledger.acks} acked" for ledger in ledgers)
            + f"; group: {total} records, {redelivered} re-delivered (not yet committed)"
        )
    finally:
        for worker in producers:
            worker.stop.set()
        for member in members:
            member.stop.set()
        node.stop()
