"""KafkaJS (pure JavaScript) through ``node/kafkajs-driver.mjs``, one Node process per module:
each call is a JSON line to it and a JSON line back, so several threads can wait at once."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from servers import NODE_DIR

from ._api import (
    Acks,
    Client,
    Cluster,
    Compression,
    Consumer,
    Delivered,
    GroupView,
    KafkaCallError,
    NotAvailable,
    OffsetSpec,
    Received,
    Record,
)

__all__ = ["KafkaJSClient"]

TIMEOUT = 60.0
TOPIC_ALREADY_EXISTS = 36


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


class _Driver:
    """The Node process; ``call`` may be used from any thread."""

    def __init__(self, bootstrap: str) -> None:
        self.process = subprocess.Popen(
            ["node", "kafkajs-driver.mjs", bootstrap],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._ids = itertools.count()
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            reply = json.loads(line)
            future = self._pending.pop(reply["id"])
            if reply["ok"]:
                future.set_result(reply["result"])
            else:
                error = reply["error"]
                detail = f"{error['name']}: {error['message']}"
                if error["code"] is None:
                    future.set_exception(RuntimeError(f"KafkaJS {detail}"))
                else:
                    future.set_exception(KafkaCallError(error["code"], detail))
        for future in self._pending.values():  # the process ended
            future.set_exception(RuntimeError(f"kafkajs-driver exited: {self._stderr()}"))

    def _stderr(self) -> str:
        return "" if self.process.stderr is None else self.process.stderr.read()

    def call(self, op: str, **args: Any) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            request_id = next(self._ids)
            self._pending[request_id] = future
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
            self.process.stdin.flush()
        return future.result(TIMEOUT)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


class _Consumer(Consumer):
    """A KafkaJS consumer: always in a group (KafkaJS has no manual assignment); assign()
    subscribes a group of its own and hands out only the partitions asked for."""

    def __init__(self, driver: _Driver, group: str | None, max_wait_ms: int) -> None:
        self._driver = driver
        self._group = group
        self._id = driver.call("consumer_open", group=group, max_wait_ms=max_wait_ms)

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._driver.call("consumer_start", id=self._id, topic=topic, partitions=list(partitions))

    def subscribe(self, topic: str) -> None:
        self._driver.call("consumer_start", id=self._id, topic=topic, partitions=None)

    def assignment(self) -> set[int]:
        return set(self._driver.call("consumer_assignment", id=self._id))

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._driver.call("consumer_seek", id=self._id, partition=partition, offset=offset)

    def poll(self, count: int, timeout: float) -> list[Received]:
        got = self._driver.call(
            "consumer_poll", id=self._id, count=count, timeout_ms=int(timeout * 1000)
        )
        return [
            Received(
                partition=m["partition"],
                offset=m["offset"],
                key=_bytes(m["key"]),
                value=_bytes(m["value"]),
                headers=tuple((k, _bytes(v) or b"") for k, v in m["headers"]),
                timestamp=m["timestamp"],
            )
            for m in got
        ]

    def commit(self) -> None:
        self._driver.call("consumer_commit", id=self._id, offsets=None)

    def commit_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        entries = [{"partition": p, "offset": o} for p, o in offsets.items()]
        self._driver.call("consumer_commit", id=self._id, offsets=entries)

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        if self._group is None:
            raise NotAvailable("no group")
        found = dict(self._driver.call("committed", group=self._group, topic=topic))
        return {p: None if found.get(p, -1) < 0 else found[p] for p in partitions}

    def close(self) -> None:
        self._driver.call("consumer_close", id=self._id)


class KafkaJSClient(Client):
    name = "KafkaJS"
    compressions = ("none", "gzip")
    #: KafkaJS's fetchTopicOffsetsByTimestamp answers the high watermark where Kafka says -1
    no_offset_at_time = "latest"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._driver = _Driver(bootstrap)

    def cluster(self) -> Cluster:
        found = self._driver.call("cluster")
        return Cluster(brokers=[tuple(b) for b in found["brokers"]], topics=found["topics"])

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        created = self._driver.call(
            "create_topic", name=name, partitions=partitions, configs=dict(configs or {})
        )
        if not created:  # KafkaJS answers TOPIC_ALREADY_EXISTS with false, not an error
            raise KafkaCallError(TOPIC_ALREADY_EXISTS, "KafkaJS createTopics returned false")

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> list[Delivered] | None:
        if compression not in self.compressions:
            raise NotAvailable(
                "KafkaJS has gzip built in; snappy, lz4 and zstd need codec packages the"
                " application registers (none is installed)"
            )
        sent = self._driver.call(
            "produce",
            topic=topic,
            records=[
                {
                    "key": _b64(r.key),
                    "value": _b64(r.value),
                    "headers": [[k, _b64(v)] for k, v in r.headers],
                    "partition": r.partition,
                    "timestamp": r.timestamp,
                }
                for r in records
            ],
            acks=acks,
            compression=compression,
            idempotent=idempotent,
        )
        return _delivered(records, sent, acks)

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        return _Consumer(self._driver, group, max_wait_ms)

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        found = dict(self._driver.call("offsets", topic=topic, spec=spec))
        return {p: found[p] for p in partitions}

    def describe_configs(self, topic: str) -> dict[str, str]:
        configs: dict[str, str] = self._driver.call("describe_configs", topic=topic)
        return configs

    def list_groups(self) -> list[str]:
        groups: list[str] = self._driver.call("list_groups")
        return groups

    def describe_group(self, group: str) -> GroupView:
        described = self._driver.call("describe_group", group=group)
        if described["error"]:
            raise KafkaCallError(described["error"], group)
        return GroupView(state=described["state"], members=described["members"])

    def create_partitions(self, topic: str, total: int) -> None:
        self._driver.call("create_partitions", topic=topic, total=total)

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int] | None:
        self._driver.call(
            "delete_records", topic=topic, before={str(p): o for p, o in before.items()}
        )
        return None  # deleteTopicRecords resolves with nothing: no low watermarks to show

    def delete_topic(self, name: str) -> None:
        self._driver.call("delete_topic", name=name)

    def close(self) -> None:
        self._driver.close()


def _delivered(
    records: Sequence[Record], sent: list[dict[str, int]], acks: str
) -> list[Delivered] | None:
    """Per-record offsets from KafkaJS's per-partition answer (the base offset of each
    partition's batch), where the records' partitions are known; else ``None``."""
    if acks == "0":
        return [Delivered(r.partition or 0, -1) for r in records]
    base = {s["partition"]: s["base_offset"] for s in sent}
    if len(base) == 1 and all(r.partition is None for r in records):
        ((partition, offset),) = base.items()
        return [Delivered(partition, offset + i) for i in range(len(records))]
    if any(r.partition is None for r in records):
        return None  # KafkaJS does not say which partition its partitioner picked
    out = []
    for r in records:
        assert r.partition is not None
        out.append(Delivered(r.partition, base[r.partition]))
        base[r.partition] += 1
    return out
