"""The client matrix: every Kafka client through one set of scenarios against one real
``millstream serve``; ``conftest.py`` prints the outcome as a table at the end of the run.

Each scenario is written once against ``clients.Client``; each cell (client x scenario) is a
test of its own. A call the client has no way to make ends the cell as n/a with the reason
(``clients.NotAvailable``); a scenario left out of a client's smaller set says so too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count

import httpx
import pytest

from millstream import DurableStream, stream
from millstream.log import COMPRESSION_NAMES, format_offset
from millstream.server.kafka.codec import ErrorCode
from servers import ServerProcess

from .clients import CLIENTS, Client, KafkaCallError, NotAvailable, Received, Record
from .wire import committed_offsets, create_topic, stored_batches

pytestmark = [pytest.mark.timeout(90)]

_names = count()


@dataclass
class Cell:
    """What a scenario gets: the client, the server, fresh names, and a place for a note."""

    client: Client
    server: ServerProcess
    scenario: str
    notes: list[str] = field(default_factory=list)

    def topic(self) -> str:
        name = f"{self.client.name}-{self.scenario}"
        slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name)
        return f"m-{slug}-{next(_names)}"[:200]

    def url(self, topic: str) -> str:
        return f"{self.server.url}/v1/stream/{topic}"


Scenario = Callable[[Cell], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[name] = fn
        return fn

    return register


def setup_topic(cell: Cell, partitions: int, configs: dict[str, str] | None = None) -> str:
    """A new topic for a scenario about something else: made by the client if it has an
    admin API, else by a raw CreateTopics (kcat)."""
    topic = cell.topic()
    try:
        cell.client.create_topic(topic, partitions, configs)
    except NotAvailable:
        create_topic(cell.server.kafka, topic, partitions, configs)
    return topic


def records(n: int, *, tag: str = "r") -> list[Record]:
    """``n`` records with keys and headers (one without a key, one without headers) whose
    values compress well, so every codec really shrinks the batch."""
    out = []
    for i in range(n):
        key = None if i == 1 else b"key-%d" % i
        # headers change every 6 records (kcat sets them per run of records, not per record)
        headers = () if i == 2 else (("run", b"%d" % (i // 6)), ("tag", tag.encode()))
        out.append(Record(value=b"%s-%d " % (tag.encode(), i) * 20, key=key, headers=headers))
    return out


def consume_all(
    client: Client, topic: str, partitions: dict[int, int], total: int, timeout: float = 20
) -> list[Received]:
    """A fresh consumer assigned ``{partition: start offset}`` reads until ``total`` records."""
    consumer = client.consumer()
    try:
        consumer.assign(topic, list(partitions))
        for partition, offset in partitions.items():
            if offset:
                consumer.seek(topic, partition, offset)
        return consumer.poll(total, timeout)
    finally:
        consumer.close()


def assert_same_records(got: list[Received], sent: list[Record], first_offset: int = 0) -> None:
    assert [(r.offset, r.key, r.value, r.headers) for r in got] == [
        (first_offset + i, r.key, r.value, r.headers) for i, r in enumerate(sent)
    ]


@contextmanager
def kafka_error(code: ErrorCode) -> Iterator[None]:
    """The block must fail with Kafka error ``code`` from the broker."""
    with pytest.raises(KafkaCallError) as raised:
        yield
    assert raised.value.code == code, raised.value


# -- admin and metadata ----------------------------------------------------------------------


@scenario("bootstrap (metadata)")
def bootstrap(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.produce(topic, [Record(b"hello")])  # auto-created by the produce
    cluster = cell.client.cluster()
    host, port = cell.server.kafka.rsplit(":", 1)
    assert cluster.brokers == [(0, host, int(port))]
    assert cluster.topics[topic] == 1


@scenario("create topic, 1 partition")
def create_one_partition(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.create_topic(topic, 1)
    assert cell.client.cluster().topics[topic] == 1
    with kafka_error(ErrorCode.TOPIC_ALREADY_EXISTS):
        cell.client.create_topic(topic, 1)


@scenario("create topic, 4 partitions")
def create_several_partitions(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.create_topic(topic, 4)
    assert cell.client.cluster().topics[topic] == 4
    sent = [Record(b"to %d" % p, partition=p) for p in range(4)]
    delivered = cell.client.produce(topic, sent)
    assert delivered is not None
    assert [(d.partition, d.offset) for d in delivered] == [(p, 0) for p in range(4)]


@scenario("describe configs")
def describe_configs(cell: Cell) -> None:
    topic = cell.topic()
    configs = {"message.timestamp.type": "LogAppendTime", "retention.ms": "3600000"}
    cell.client.create_topic(topic, 1, configs)
    described = cell.client.describe_configs(topic)
    assert described["message.timestamp.type"] == "LogAppendTime"
    assert described["retention.ms"] == "3600000"
    assert described["cleanup.policy"] == "delete"  # a default, reported too
    before = int(time.time() * 1000)
    cell.client.produce(topic, [Record(b"old clock", timestamp=1_000_000_000_000)])
    (got,) = consume_all(cell.client, topic, {0: 0}, 1)
    assert got.timestamp >= before  # LogAppendTime: the broker's clock, not the producer's


@scenario("create partitions")
def create_partitions(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.create_topic(topic, 1)
    cell.client.create_partitions(topic, 3)
    assert cell.client.cluster().topics[topic] == 3
    (delivered,) = cell.client.produce(topic, [Record(b"new partition", partition=2)]) or ()
    assert (delivered.partition, delivered.offset) == (2, 0)
    with kafka_error(ErrorCode.INVALID_PARTITIONS):
        cell.client.create_partitions(topic, 2)  # partitions are never removed


@scenario("delete records")
def delete_records(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.create_topic(topic, 2)
    cell.client.produce(topic, [Record(b"%d" % i, partition=i % 2) for i in range(12)])
    assert cell.client.delete_records(topic, {0: 4}) in ({0: 4}, None)  # None: not reported
    assert cell.client.offsets(topic, [0, 1], "earliest") == {0: 4, 1: 0}
    rest = consume_all(cell.client, topic, {0: 0}, 2)  # a fresh consumer starts at the log start
    assert [r.offset for r in rest] == [4, 5]


@scenario("delete topic")
def delete_topic(cell: Cell) -> None:
    topic = cell.topic()
    cell.client.create_topic(topic, 2)
    cell.client.produce(topic, [Record(b"doomed")])
    cell.client.delete_topic(topic)
    assert topic not in cell.client.cluster().topics
    assert httpx.get(cell.url(topic), params={"offset": "-1"}).status_code == 404
    with kafka_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
        cell.client.delete_topic(topic)


# -- produce ---------------------------------------------------------------------------------

ACKS = ("0", "1", "all")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


def _produce_cell(acks: str, compression: str) -> Scenario:
    def produce(cell: Cell) -> None:
        topic = cell.topic()
        sent = records(12, tag=f"{acks}-{compression}")
        delivered = cell.client.produce(topic, sent, acks=acks, compression=compression)
        if acks != "0" and delivered is not None:  # acks=0 gets no answer, so no offsets
            assert [(d.partition, d.offset) for d in delivered] == [(0, i) for i in range(12)]
        assert_same_records(consume_all(cell.client, topic, {0: 0}, 12), sent)
        batches = stored_batches(cell.server.kafka, topic)
        codecs = {COMPRESSION_NAMES[batch.attributes & 0x07] for batch in batches}
        assert codecs == {compression}  # stored as the client compressed it

    return produce


for _acks in ACKS:
    for _compression in COMPRESSIONS:
        scenario(f"produce acks={_acks} {_compression}")(_produce_cell(_acks, _compression))


@scenario("idempotent producer")
def idempotent_producer(cell: Cell) -> None:
    topic = setup_topic(cell, 3)
    sent = [Record(b"v%d" % i, key=b"k%d" % (i % 7)) for i in range(60)]
    delivered = cell.client.produce(topic, sent, idempotent=True)
    got = consume_all(cell.client, topic, dict.fromkeys(range(3), 0), 60)
    assert Counter(r.value for r in got) == Counter(r.value for r in sent)  # each once
    by_partition: dict[int, list[int]] = {}
    for r in got:
        by_partition.setdefault(r.partition, []).append(r.offset)
    assert set(by_partition) == {0, 1, 2}
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))  # dense, no gap
    if delivered is not None:
        assert sorted((d.partition, d.offset) for d in delivered) == sorted(
            (r.partition, r.offset) for r in got
        )
    for partition in range(3):
        batches = stored_batches(cell.server.kafka, topic, partition)
        assert all(b.producer_id >= 0 for b in batches)  # InitProducerId, sequence numbers
        assert batches[0].base_sequence == 0


# -- consume ---------------------------------------------------------------------------------


@scenario("commit, committed, seek")
def commit_committed_seek(cell: Cell) -> None:
    topic, group = cell.topic(), cell.topic()
    sent = records(10)
    cell.client.produce(topic, sent)
    consumer = cell.client.consumer(group)
    try:
        consumer.assign(topic, [0])
        assert_same_records(consumer.poll(10, 20), sent)
        consumer.commit_offsets(topic, {0: 4})
        assert consumer.committed(topic, [0]) == {0: 4}
    finally:
        consumer.close()
    resumed = cell.client.consumer(group)
    try:
        resumed.assign(topic, [0])
        got = resumed.poll(1, 20)
        assert got[0].offset == 4  # resumes at the committed offset
        resumed.seek(topic, 0, 8)
        assert [r.offset for r in resumed.poll(2, 20)] == [8, 9]
        resumed.commit()
        assert resumed.committed(topic, [0]) == {0: 10}
    finally:
        resumed.close()


@scenario("ListOffsets earliest/latest/time")
def list_offsets(cell: Cell) -> None:
    topic = setup_topic(cell, 2)
    cell.client.produce(topic, [Record(b"early %d" % i, partition=0) for i in range(3)])
    start = int(time.time() * 1000) + 5
    while int(time.time() * 1000) <= start:  # later records get later CreateTimes
        time.sleep(0.002)
    cell.client.produce(topic, [Record(b"late %d" % i, partition=0) for i in range(2)])
    assert cell.client.offsets(topic, [0, 1], "earliest") == {0: 0, 1: 0}
    assert cell.client.offsets(topic, [0, 1], "latest") == {0: 5, 1: 0}
    assert cell.client.offsets(topic, [0], start) == {0: 3}
    none = 5 if cell.client.no_offset_at_time == "latest" else -1  # the client's own mapping
    assert cell.client.offsets(topic, [0], start + 3_600_000) == {0: none}


@scenario("long-poll wake-up")
def long_poll_wakeup(cell: Cell) -> None:
    """A consumer parked in Fetch (max wait 20 s) gets a new record as soon as it is
    produced; the note is the time from the record's CreateTime to the consumer having it."""
    topic = cell.topic()
    cell.client.produce(topic, [Record(b"first")])
    consumer = cell.client.consumer(max_wait_ms=20_000)
    try:
        consumer.assign(topic, [0])
        assert [r.value for r in consumer.poll(1, 20)] == [b"first"]
        # The client sends its next fetch as soon as it has the first answer; it parks now.
        assert consumer.poll(1, 0.5) == []
        got: list[tuple[Received, float]] = []

        def wait() -> None:
            got.extend((r, time.time()) for r in consumer.poll(1, 30))

        waiter = threading.Thread(target=wait)
        waiter.start()
        cell.client.produce(topic, [Record(b"second")])
        waiter.join(35)
        # the consumer's next fetch is parked now: wake it, or closing waits out its 20 s
        cell.client.produce(topic, [Record(b"third")])
    finally:
        consumer.close()
    assert [r.value for r, _ in got] == [b"second"]
    record, received = got[0]
    latency = received - record.timestamp / 1000
    assert latency < 10, f"got it {latency:.1f} s after it was sent: the 20 s max wait ran out"
    cell.notes.append(f"{latency * 1000:.0f} ms")


@scenario("group: members join and leave")
def group_rebalance(cell: Cell) -> None:
    """Every record is consumed exactly once across a group whose members come and go: the
    members commit after each poll, so each new owner resumes at the last commit."""
    topic, group = setup_topic(cell, 4), cell.topic()

    def produce(phase: str) -> None:
        cell.client.produce(
            topic, [Record(b"%s %d" % (phase.encode(), i), partition=i % 4) for i in range(20)]
        )

    seen: list[tuple[str, int, int]] = []
    lock = threading.Lock()

    with _Group(cell.client, group, topic, seen, lock) as members:
        produce("one")
        a = members.join("a")
        _wait(lambda: len(seen) >= 20, "member a never read the first 20 records")
        b = members.join("b")
        _wait(lambda: a.assigned and b.assigned and a.assigned | b.assigned == set(range(4)),
              "the group never split the partitions between a and b")  # fmt: skip
        produce("two")
        _wait(lambda: len(seen) >= 40, "the group never read the second 20 records")
        members.leave(a)
        _wait(lambda: b.assigned == set(range(4)), "b never took a's partitions")
        produce("three")
        _wait(lambda: len(seen) >= 60, "b never read the last 20 records")
    by_member = Counter(name for name, _, _ in seen)
    assert by_member["a"] >= 20, by_member  # both took part
    assert by_member["b"] >= 20, by_member
    duplicates = [k for k, n in Counter((p, o) for _, p, o in seen).items() if n > 1]
    assert not duplicates, f"read twice: {[s for s in seen if (s[1], s[2]) in duplicates]}"
    assert sorted((p, o) for _, p, o in seen) == sorted((p, o) for p in range(4) for o in range(15))
    # the last commits stand once every member has left (as the broker holds them)
    assert committed_offsets(cell.server.kafka, group, topic, range(4)) == dict.fromkeys(
        range(4), 15
    )


@dataclass
class _Member:
    name: str
    thread: threading.Thread | None = None
    assigned: set[int] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class _Group:
    """Members polling on threads: each appends what it reads to ``seen`` and commits."""

    def __init__(self, client: Client, group: str, topic: str, seen: list, lock: threading.Lock):
        self.client, self.group, self.topic = client, group, topic
        self.seen, self.lock = seen, lock
        self.members: list[_Member] = []

    def join(self, name: str) -> _Member:
        member = _Member(name)
        consumer = self.client.consumer(self.group)
        consumer.subscribe(self.topic)

        def run() -> None:
            try:
                while not member.stop.is_set():
                    got = consumer.poll(1, 0.2)
                    if got:
                        with self.lock:
                            self.seen.extend((name, r.partition, r.offset) for r in got)
                        consumer.commit()
                    member.assigned = consumer.assignment()
            except BaseException as exc:
                member.error = exc
            finally:
                consumer.close()

        member.thread = threading.Thread(target=run, name=f"member-{name}")
        member.thread.start()
        self.members.append(member)
        return member

    def __enter__(self) -> _Group:
        return self

    def __exit__(self, *exc: object) -> None:
        for member in self.members:
            member.stop.set()
        for member in self.members:
            if member.thread is not None:
                member.thread.join(30)
        self.check()

    def leave(self, member: _Member) -> None:
        member.stop.set()
        assert member.thread is not None
        member.thread.join(30)
        self.check()

    def check(self) -> None:
        for member in self.members:
            if member.error is not None:
                raise member.error


def _wait(condition: Callable[[], bool], message: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


@scenario("list and describe groups")
def list_and_describe_groups(cell: Cell) -> None:
    topic, group = cell.topic(), cell.topic()
    cell.client.produce(topic, records(3))
    consumer = cell.client.consumer(group)
    try:
        consumer.subscribe(topic)
        assert len(consumer.poll(3, 20)) == 3
        consumer.commit()
        assert group in cell.client.list_groups()
        described = cell.client.describe_group(group)
        assert (described.state, described.members) == ("Stable", 1)
    finally:
        consumer.close()
    described = cell.client.describe_group(group)
    assert (described.state, described.members) == ("Empty", 0)


# -- across the doors ------------------------------------------------------------------------

JSON_TOPIC = {"millstream.content.type": "application/json"}


def _json_topic(cell: Cell) -> tuple[str, list[object]]:
    """A JSON topic holding JSON
    values produced compressed by the client, and one value that is not JSON."""
    topic = setup_topic(cell, 1, JSON_TOPIC)
    values: list[object] = [{"n": i, "text": "héllo"} for i in range(10)]
    sent = [Record(json.dumps(v).encode()) for v in values]
    codec = cell.client.compressions[-1]
    cell.client.produce(topic, [*sent, Record(b"not json")], compression=codec)
    return topic, [*values, "not json"]


@scenario("Kafka → HTTP catch-up")
def kafka_to_http(cell: Cell) -> None:
    topic, values = _json_topic(cell)
    response = httpx.get(cell.url(topic), params={"offset": "-1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == values
    assert response.headers["stream-next-offset"] == format_offset(len(values))
    tail = httpx.get(cell.url(topic), params={"offset": format_offset(9)}).json()
    assert tail == values[9:]


@scenario("Kafka → HTTP SSE")
def kafka_to_sse(cell: Cell) -> None:
    topic, values = _json_topic(cell)
    params = {"offset": format_offset(8), "live": "sse"}
    with httpx.stream("GET", cell.url(topic), params=params, timeout=20) as sse:
        events = _sse_events(sse.iter_lines())
        kind, data = next(events)
        assert (kind, json.loads(data)) == ("data", values[8:])
        kind, data = next(events)
        assert json.loads(data)["streamNextOffset"] == format_offset(len(values))
        cell.client.produce(topic, [Record(b'{"live": true}')])  # read live over SSE
        kind, data = next(events)
        assert (kind, json.loads(data)) == ("data", [{"live": True}])


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    kind = ""
    for line in lines:
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            yield kind, line[5:]


@scenario("Kafka → millstream client")
def kafka_to_client(cell: Cell) -> None:
    topic, values = _json_topic(cell)
    with stream(cell.url(topic), live=False) as res:
        assert res.read_json() == values


@scenario("HTTP → Kafka consumer")
def http_to_kafka(cell: Cell) -> None:
    topic = cell.topic()
    with DurableStream.create(cell.url(topic), content_type="text/plain") as handle:
        for i in range(5):
            handle.append(f"line {i}")
        consumer = cell.client.consumer()
        try:
            consumer.assign(topic, [0])
            got = consumer.poll(5, 20)
            assert [(r.offset, r.key, r.value) for r in got] == [
                (i, None, b"line %d" % i) for i in range(5)
            ]
            handle.append("live one")  # a consumer at the tail gets the next append
            (live,) = consumer.poll(1, 20)
            assert (live.offset, live.value) == (5, b"live one")
        finally:
            consumer.close()
    assert cell.client.offsets(topic, [0], "latest") == {0: 6}


@scenario("Kafka and HTTP into one log")
def both_doors_one_log(cell: Cell) -> None:
    topic = cell.topic()
    url = cell.url(topic)
    httpx.put(url, headers={"content-type": "application/octet-stream"}).raise_for_status()
    expected = []
    for i in range(3):
        cell.client.produce(topic, [Record(b"kafka %d" % i)])
        httpx.post(
            url, content=b"http %d" % i, headers={"content-type": "application/octet-stream"}
        )
        expected += [b"kafka %d" % i, b"http %d" % i]
    got = consume_all(cell.client, topic, {0: 0}, 6)
    assert [r.value for r in got] == expected


# -- the matrix ------------------------------------------------------------------------------


def _cells() -> list[object]:
    return [
        pytest.param(client, name, id=f"{client}-{name}", marks=pytest.mark.kafka_matrix)
        for client in CLIENTS
        for name in SCENARIOS
    ]


@pytest.fixture(scope="module")
def client_pool(kafka_server: ServerProcess) -> Iterator[dict[str, Client]]:
    """One instance per client library, made on first use and closed at the end."""
    pool: dict[str, Client] = {}
    yield pool
    for client in pool.values():
        client.close()


@pytest.mark.parametrize(("client_name", "scenario_name"), _cells())
def test_cell(
    client_name: str,
    scenario_name: str,
    kafka_server: ServerProcess,
    client_pool: dict[str, Client],
    request: pytest.FixtureRequest,
) -> None:
    factory = CLIENTS[client_name]
    if (reason := factory.left_out.get(scenario_name)) is not None:
        pytest.skip(reason)
    if client_name not in client_pool:
        client_pool[client_name] = factory(kafka_server.kafka)
    cell = Cell(client_pool[client_name], kafka_server, scenario_name)
    try:
        SCENARIOS[scenario_name](cell)
    except NotAvailable as exc:
        pytest.skip(f"n/a: {exc}")
    finally:
        if cell.notes:
            request.node.user_properties.append(("matrix_note", "; ".join(cell.notes)))
