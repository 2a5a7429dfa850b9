"""kcat (Debian's, librdkafka 2.0): one process per call, JSON output (``-J``).

kcat produces (``-P``: keys with ``-K``, headers with ``-H``, ``-z`` codecs, ``-X`` for acks
and idempotence), consumes partitions from an offset (``-C``), lists metadata (``-L``) and
looks offsets up (``-Q``) and joins groups (``-G``); it has no admin API and no commit or
committed-offset lookup of its own.
"""

from __future__ import annotations

import json
import queue
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from ._api import (
    Acks,
    Client,
    Cluster,
    Compression,
    Consumer,
    NotAvailable,
    OffsetSpec,
    Received,
    Record,
)

__all__ = ["KcatClient"]

_KEY_DELIMITER = "|"
_UNCOMPRESSED = re.compile(r"Broker does not support compression type \w+")
_REBALANCED = re.compile(r"rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)")


def _kcat(bootstrap: str, *args: str, data: bytes | None = None) -> tuple[bytes, str]:
    """kcat's output and its debug lines (``-d``); anything else on stderr fails the call."""
    assert shutil.which("kcat"), "kcat is missing: tools/ensure-debian-packages installs it"
    done = subprocess.run(
        ["kcat", "-b", bootstrap, *args], input=data, capture_output=True, timeout=60, check=False
    )
    errors = done.stderr.decode()
    problems = [line for line in errors.splitlines() if line and not line.startswith("%7|")]
    assert done.returncode == 0, errors
    assert not problems, errors
    return done.stdout, errors


def _received(line: dict[str, Any]) -> Received:
    flat = line.get("headers") or []
    key, payload = line["key"], line["payload"]
    return Received(
        partition=line["partition"],
        offset=line["offset"],
        key=None if key is None else key.encode(),
        value=None if payload is None else payload.encode(),
        headers=tuple((k, v.encode()) for k, v in zip(flat[::2], flat[1::2], strict=True)),
        timestamp=line["ts"],
    )


class _Consumer(Consumer):
    """Assigned partitions read from a position by ``kcat -C``, one process per poll."""

    def __init__(self, bootstrap: str, max_wait_ms: int) -> None:
        self.bootstrap = bootstrap
        self.max_wait_ms = max_wait_ms
        self.topic = ""
        self.positions: dict[int, int] = {}

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self.topic = topic
        self.positions = dict.fromkeys(partitions, 0)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self.positions[partition] = offset

    def poll(self, count: int, timeout: float) -> list[Received]:
        """One partition: a kcat that waits for the records. Several: rounds of one kcat per
        partition that stops at the partition's end (``-e``)."""
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        to_end = len(self.positions) > 1
        while len(out) < count and time.monotonic() < deadline:
            for partition, position in self.positions.items():
                got = self._read(partition, position, count - len(out), deadline, to_end)
                if got:
                    self.positions[partition] = got[-1].offset + 1
                out.extend(got)
                if len(out) >= count:
                    break
        return out

    def _read(
        self, partition: int, offset: int, count: int, deadline: float, to_end: bool
    ) -> list[Received]:
        argv = ["kcat", "-b", self.bootstrap, "-C", "-t", self.topic, "-p", str(partition)]
        argv += ["-o", str(offset), "-c", str(count), "-J", "-q", "-u", *(["-e"] if to_end else [])]
        argv += ["-X", f"fetch.wait.max.ms={self.max_wait_ms}"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        out: list[Received] = []
        pending = b""
        try:
            while len(out) < count and (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([process.stdout], [], [], left)
                if not ready:
                    break
                chunk = process.stdout.read1(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out.extend(_received(json.loads(line)) for line in lines if line)
        finally:
            process.kill()
            _, errors = process.communicate()
        assert not errors.strip(), errors.decode()
        return out


class _GroupMember(Consumer):
    """``kcat -G GROUP TOPIC``: one long-running balanced consumer. kcat has no commit command:
    librdkafka's auto-commit (every 100 ms here), its commit on revoke, and kcat's commit at
    exit commit what it printed; ``commit`` leaves it to them. The assignment is read from
    kcat's "rebalanced" lines."""

    def __init__(self, bootstrap: str, group: str, max_wait_ms: int) -> None:
        self.bootstrap, self.group, self.max_wait_ms = bootstrap, group, max_wait_ms
        self.records: queue.Queue[Received] = queue.Queue()
        self.assigned: set[int] = set()
        self.errors: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        raise NotAvailable("kcat has no commit or committed-offset lookup (-G subscribes only)")

    def subscribe(self, topic: str) -> None:
        argv = ["kcat", "-b", self.bootstrap, "-G", self.group, topic, "-J", "-u"]
        for setting in (
            "auto.offset.reset=earliest",
            "auto.commit.interval.ms=100",
            "heartbeat.interval.ms=200",
            "session.timeout.ms=6000",
            f"fetch.wait.max.ms={self.max_wait_ms}",
        ):
            argv += ["-X", setting]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._readers = [
            threading.Thread(target=self._read_records, daemon=True),
            threading.Thread(target=self._read_notes, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_records(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.records.put(_received(json.loads(line)))

    def _read_notes(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode().strip()
            if match := _REBALANCED.search(line):
                parts = {int(p) for p in re.findall(r"\[(\d+)\]", match.group(2))}
                self.assigned = parts if match.group(1) == "assigned" else set()
            elif line and not line.startswith(("% Waiting", "% Reached end")):
                self.errors.append(line)

    def assignment(self) -> set[int]:
        return set(self.assigned)

    def poll(self, count: int, timeout: float) -> list[Received]:
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.records.get(timeout=left))
            except queue.Empty:
                break
        assert not self.errors, self.errors
        return out

    def commit(self) -> None:
        """Left to librdkafka's auto-commit, revoke and close (see the class)."""

    def close(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # kcat leaves the group and commits on SIGTERM
        self.process.wait(30)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        assert self.process.returncode == 0, self.errors


class KcatClient(Client):
    name = "kcat"
    left_out = {
        "long-poll wake-up": "n/a: each poll is a new kcat process, so no fetch stays parked"
        " across the produce",
    }

    def cluster(self) -> Cluster:
        listing = json.loads(_kcat(self.bootstrap, "-L", "-J")[0])
        brokers = []
        for broker in listing["brokers"]:
            host, port = broker["name"].rsplit(":", 1)
            brokers.append((broker["id"], host, int(port)))
        return Cluster(
            brokers=brokers,
            topics={t["topic"]: len(t["partitions"]) for t in listing["topics"]},
        )

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> None:
        """Delivered, but kcat prints no offsets (``None``)."""
        if any(r.timestamp is not None for r in records):
            raise NotAvailable("kcat -P cannot set a record's timestamp")
        config = ["-X", f"acks={acks}", "-z", compression]
        if idempotent:
            config += ["-X", "enable.idempotence=true"]
        # -H applies to every record of a run: one run per stretch of records sharing headers
        for (headers, partition), run in groupby(records, lambda r: (r.headers, r.partition)):
            lines = []
            for r in run:
                if b"\n" in r.value or (r.key and _KEY_DELIMITER.encode() in r.key):
                    raise NotAvailable("kcat -P reads one record per line")
                key = b"" if r.key is None else r.key + _KEY_DELIMITER.encode()
                lines.append(key + r.value)  # a line without the delimiter has a null key
            args = ["-P", "-t", topic, "-K", _KEY_DELIMITER, *config]
            args += [arg for name, value in headers for arg in ("-H", f"{name}={value.decode()}")]
            if partition is not None:
                args += ["-p", str(partition)]
            _, debug = _kcat(self.bootstrap, *args, "-d", "msg", data=b"\n".join(lines) + b"\n")
            # librdkafka 2.0 compresses with gzip, snappy and lz4 only if the broker lists
            # Produce v0, and says so in a debug line when it sends a batch uncompressed
            refused = _UNCOMPRESSED.search(debug)
            assert refused is None, f"kcat's librdkafka 2.0.2: {refused.group(0)}"

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        if group is not None:
            return _GroupMember(self.bootstrap, group, max_wait_ms)
        return _Consumer(self.bootstrap, max_wait_ms)

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        when = -2 if spec == "earliest" else -1 if spec == "latest" else spec
        found: dict[int, int] = {}
        for partition in partitions:  # one -Q each: its JSON repeats keys for several
            query = f"{topic}:{partition}:{when}"
            answer = json.loads(_kcat(self.bootstrap, "-Q", "-J", "-t", query)[0])
            found[partition] = answer[topic][str(partition)]["offset"]
        return found

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        raise NotAvailable("kcat has no admin API (topics are auto-created on produce)")
