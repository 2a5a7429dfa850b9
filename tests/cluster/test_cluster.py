"""Several `millstream serve --store postgresql://...` processes on one real PostgreSQL.

A write through node A is read live on nodes B and C (SSE, long-poll, a Kafka consumer); a
node killed with SIGKILL under load of both doors (HTTP appenders, an idempotent Kafka
producer) leaves the others serving with nothing acknowledged lost or duplicated; PostgreSQL
restarted under load makes nodes answer 503 (never 500) and recover by themselves.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonPartition
from postgres import PostgresServer

from millstream.log import format_offset
from servers import wait_until

from .conftest import StartCluster

pytestmark = pytest.mark.timeout(180)


def sse_events(url: str, offset: str, stop: threading.Event, out: list[str]) -> None:
    """Collect the data events of an SSE read until ``stop`` (run in a thread)."""
    with httpx.stream("GET", url, params={"offset": offset, "live": "sse"}, timeout=30) as sse:
        kind = ""
        for line in sse.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "data":
                out.append(line[5:])
            if stop.is_set() and out:
                return


def test_a_write_through_one_node_is_read_live_on_the_others(start_cluster: StartCluster) -> None:
    a, b, c = start_cluster(3)
    path = "/v1/stream/room"
    assert httpx.put(a.url + path, headers={"content-type": "text/plain"}).status_code == 201
    start = format_offset(0)

    got_sse: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(target=sse_events, args=(b.url + path, start, stop, got_sse))
    reader.start()
    poll: concurrent.futures.Future[httpx.Response]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        poll = pool.submit(
            httpx.get, c.url + path, params={"offset": start, "live": "long-poll"}, timeout=30
        )
        time.sleep(0.5)  # both readers are parked on their nodes (a late one reads anyway)
        assert not poll.done()
        t0 = time.monotonic()
        text = {"content-type": "text/plain"}
        assert httpx.post(a.url + path, content=b"hello", headers=text).status_code == 204
        answer = poll.result(timeout=10)
        waited = time.monotonic() - t0
    assert answer.status_code == 200
    assert answer.content == b"hello"
    assert answer.headers["stream-next-offset"] == format_offset(1)
    # Well under the 5 s long-poll timeout and the 1 s re-check: woken by the notification.
    assert waited < 1.0, waited
    stop.set()
    reader.join(10)
    assert got_sse == ["hello"]

    # The Kafka door of node C consumes what node A appended over HTTP.
    consumer = KafkaConsumer(bootstrap_servers=c.kafka, consumer_timeout_ms=10_000)
    try:
        partition = KafkaPythonPartition("room", 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        records = []
        for record in consumer:
            records.append(record)
            if len(records) == 2:
                break
            httpx.post(a.url + path, content=b"again", headers={"content-type": "text/plain"})
    finally:
        consumer.close()
    assert [(r.offset, r.value) for r in records] == [(0, b"hello"), (1, b"again")]


def _append_loop(
    url: str, name: str, stop: threading.Event, acked: list[str], statuses: list[int]
) -> None:
    """Append ``name-i`` one at a time (no retries) until ``stop``; record what was acked."""
    with httpx.Client(timeout=10) as client:
        for i in itertools.count():
            if stop.is_set():
                return
            body = f"{name}-{i}"
            try:
                response = client.post(
                    url, content=json.dumps(body), headers={"content-type": "application/json"}
                )
            except httpx.TransportError:
                statuses.append(-1)  # the node went away: the client moves on
                time.sleep(0.05)
                continue
            statuses.append(response.status_code)
            if response.status_code == 204:
                acked.append(body)
            else:
                time.sleep(0.05)


def _read_all(url: str) -> list[str]:
    response = httpx.get(url, params={"offset": "-1"}, timeout=30)
    assert response.status_code == 200
    items: list[str] = response.json()
    return items


def _check_exactly_once(stored: list[str], acked: Iterator[str]) -> None:
    """Every acknowledged append is stored once; nothing is stored twice (an append that got
    an error or no answer may be stored, once)."""
    counts = collections.Counter(stored)
    assert [item for item, n in counts.items() if n > 1] == []
    missing = [body for body in acked if counts[body] != 1]
    assert missing == []


def _produce_loop(
    bootstrap: str, topic: str, stop: threading.Event, acked: list[bytes], failed: list[str]
) -> None:
    """An idempotent Kafka producer sending ``k-i`` until ``stop``; what it got acks for."""

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            acked.append(msg.value())
        else:
            failed.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60_000,
        }
    )
    try:
        for i in itertools.count():
            if stop.is_set():
                break
            producer.produce(topic, value=b"k-%d" % i, on_delivery=delivered)
            producer.poll(0.002)
    except KafkaException as exc:  # a fatal producer error: the test reports it
        failed.append(str(exc))
    producer.flush(60)


def _consume_all(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    """Every record of ``topic``, read to each partition's end without a group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "enable.auto.commit": False})  # fmt: skip
    out: list[bytes] = []
    try:
        for k in range(partitions):
            end = consumer.get_watermark_offsets(TopicPartition(topic, k), timeout=20)[1]
            consumer.assign([TopicPartition(topic, k, 0)])
            got = 0
            deadline = time.monotonic() + 60
            while got < end and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    out.append(message.value())
                    got += 1
            assert got == end, (k, got, end)
    finally:
        consumer.close()
    return out


def test_kill_9_one_node_under_load_from_both_doors_loses_and_duplicates_nothing(
    start_cluster: StartCluster,
) -> None:
    nodes = start_cluster(3)
    path = "/v1/stream/load"
    headers = {"content-type": "application/json"}
    assert httpx.put(nodes[0].url + path, headers=headers).status_code == 201
    everyone = ",".join(node.kafka for node in nodes)
    admin = AdminClient({"bootstrap.servers": everyone})
    for future in admin.create_topics([NewTopic("kload", 6, 1)]).values():
        future.result(15)
    stop = threading.Event()
    acked: dict[str, list[str]] = {}
    statuses: dict[str, list[int]] = {}
    threads = []
    for k, node in enumerate(nodes):
        for w in range(2):
            name = f"n{k}w{w}"
            acked[name], statuses[name] = [], []
            thread = threading.Thread(
                target=_append_loop,
                args=(node.url + path, name, stop, acked[name], statuses[name]),
            )
            thread.start()
            threads.append(thread)
    produced: list[bytes] = []
    failed: list[str] = []
    producer = threading.Thread(
        target=_produce_loop, args=(everyone, "kload", stop, produced, failed)
    )
    producer.start()
    threads.append(producer)
    assert wait_until(lambda: len(produced) > 100 and all(acked.values()), 30)
    nodes[0].kill()  # SIGKILL under load
    before = {name: len(a) for name, a in acked.items()}
    produced_before = len(produced)
    # The survivors keep serving both doors; the Kafka partitions the dead node led move
    # once it has missed its heartbeats (--cluster-ttl) and the producer follows them.
    assert wait_until(
        lambda: all(len(acked[f"n{k}w{w}"]) > before[f"n{k}w{w}"] + 5
                    for k in (1, 2) for w in (0, 1)),
        20,
    )  # fmt: skip
    assert wait_until(lambda: len(produced) > produced_before + 500, 60)
    stop.set()
    for thread in threads:
        thread.join(90)
    for name in ("n1w0", "n1w1", "n2w0", "n2w1"):
        assert 500 not in statuses[name]
    stored = _read_all(nodes[1].url + path)
    assert _read_all(nodes[2].url + path) == stored
    _check_exactly_once(stored, itertools.chain(*acked.values()))
    assert failed == []  # the idempotent producer got every record acked in the end
    records = _consume_all(nodes[2].kafka, "kload", 6)
    counts = collections.Counter(records)
    assert [r for r, n in counts.items() if n > 1] == []
    assert set(produced) <= set(counts)


def test_postgresql_restart_under_load_answers_503_then_recovers(
    postgres_server: PostgresServer, start_cluster: StartCluster
) -> None:
    nodes = start_cluster(2)
    path = "/v1/stream/restart"
    json_type = {"content-type": "application/json"}
    assert httpx.put(nodes[0].url + path, headers=json_type).status_code == 201
    stop = threading.Event()
    acked: list[list[str]] = [[], []]
    statuses: list[list[int]] = [[], []]
    threads = [
        threading.Thread(
            target=_append_loop,
            args=(node.url + path, f"r{k}", stop, acked[k], statuses[k]),
        )
        for k, node in enumerate(nodes)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    postgres_server.stop("fast")
    time.sleep(1.5)
    down = [len(s) for s in statuses]
    postgres_server.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
        len(a) > 0 and a[-1] and s[-1] == 204 for a, s in zip(acked, statuses, strict=True)
    ):
        time.sleep(0.2)
    recovered = [len(a) for a in acked]
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(15)
    for k in range(2):
        codes = set(statuses[k])
        assert 500 not in codes, statuses[k]
        assert 503 in set(statuses[k][: down[k] + 50]) or -1 in codes, statuses[k][-40:]
        assert len(acked[k]) > recovered[k] > 0, "appends succeed again after the restart"
    _check_exactly_once(_read_all(nodes[1].url + path), itertools.chain(*acked))
