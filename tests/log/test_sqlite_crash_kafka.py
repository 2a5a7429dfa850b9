"""``kill -9`` a process producing idempotent Kafka batches (kept in batch files in some
cycles, in the database in others) and writing key-value state (alone and with appends); after
each restart every acknowledged batch is present exactly once, the
producer state answers retries as duplicates at their original offsets, producer ids never
repeat, and the key-value table agrees with the data it was committed with."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from millstream.log import SqliteStore

from .crash_check import run_until_killed
from .crash_worker import parse_payload
from .crash_worker_kafka import record_value
from .helpers import kafka_batch, read_all

WORKER = Path(__file__).with_name("crash_worker_kafka.py")
CYCLES = 3


@dataclass
class KafkaLedger:
    pids: dict[int, int] = field(default_factory=dict)  # task -> producer id
    all_pids: list[int] = field(default_factory=list)
    next_seq: dict[int, int] = field(default_factory=dict)
    batches: dict[tuple[int, int], tuple[int, int]] = field(
        default_factory=dict
    )  # -> (count, base)
    counters: dict[int, int] = field(default_factory=dict)
    logged: dict[int, int] = field(default_factory=dict)  # task -> highest acknowledged n
    acks: int = 0

    def record_line(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        if parts[0] == "ID":
            task, pid = int(parts[1]), int(parts[2])
            self.pids[task] = pid
            self.all_pids.append(pid)
        elif parts[0] == "K":
            task, seq, count, base = map(int, parts[1:5])
            self.batches[(task, seq)] = (count, base)
            self.next_seq[task] = max(self.next_seq.get(task, 0), seq + count)
            self.acks += 1
        elif parts[0] == "V":
            self.counters[int(parts[1])] = max(self.counters.get(int(parts[1]), 0), int(parts[2]))
            self.acks += 1
        elif parts[0] == "L":
            self.logged[int(parts[1])] = max(self.logged.get(int(parts[1]), -1), int(parts[2]))
            self.acks += 1

    def state(self) -> str:
        return json.dumps({str(t): [pid, self.next_seq.get(t, 0)] for t, pid in self.pids.items()})


async def verify(store: SqliteStore, ledger: KafkaLedger) -> None:
    values = await read_all(store, "kafka")
    by_task: dict[int, list[int]] = defaultdict(list)
    positions: dict[tuple[int, int], int] = {}
    for position, value in enumerate(values):
        kind, task, seq = parse_payload(value)  # raises if torn
        assert kind == "K"
        by_task[int(task)].append(int(seq))
        positions[(int(task), int(seq))] = position
    for task, seqs in by_task.items():
        assert seqs == list(range(len(seqs))), f"producer {task} is duplicated, gapped or reordered"
    for (task, seq), (count, base) in ledger.batches.items():
        for i in range(count):
            assert positions.get((task, seq + i)) == base + i, f"acknowledged {task}/{seq} moved"
    # The producer state came back with the data: the last batch of each producer is a retry.
    for task, pid in ledger.pids.items():
        last = max((s for t, s in ledger.batches if t == task), default=None)
        if last is None:
            continue
        count, base = ledger.batches[(task, last)]
        values_ = [record_value(task, last, i) for i in range(count)]
        retry = await store.produce("kafka", kafka_batch(values_, producer=(pid, 0, last)))
        assert (retry.duplicate, retry.base_offset) == (True, base)
    assert len(set(ledger.all_pids)) == len(ledger.all_pids), "a producer id was handed out twice"
    for task, acked in ledger.counters.items():
        item = await store.kv_get("crash", f"counter/{task}")
        assert item is not None
        assert acked <= int(item.value) <= acked + 1  # at most the one in flight
    log = await read_all(store, "kvlog")
    per_task: dict[int, list[int]] = defaultdict(list)
    for payload in log:
        kind, task, n = parse_payload(payload)
        assert kind == "L"
        per_task[int(task)].append(int(n))
    for task, ns in per_task.items():
        assert ns == list(range(len(ns))), f"kvlog task {task} is duplicated or gapped"
        item = await store.kv_get("crash", f"pos/{task}")
        assert item is not None
        assert int(item.value) == ns[-1], "the key-value write and its append disagree"
    for task, acked in ledger.logged.items():
        assert len(per_task[task]) > acked, f"acknowledged kvlog {task}/{acked} is missing"


@pytest.mark.slow
async def test_kill_9_during_idempotent_produce_and_kv_writes(tmp_path: Path) -> None:
    ledger = KafkaLedger()
    data_dir = tmp_path / "data"
    for cycle in range(CYCLES):
        argv = [sys.executable, str(WORKER), str(data_dir), str(cycle), ledger.state()]
        before = ledger.acks
        lines = await asyncio.to_thread(
            run_until_killed, argv, ledger, kill_after_acks=300 + 200 * cycle, ack_prefixes=b"KVL"
        )
        assert ledger.acks > before, "".join(lines[-20:])
        store = SqliteStore(data_dir)
        try:
            await verify(store, ledger)
        finally:
            await store.aclose()
    assert len(ledger.batches) > 300
    assert ledger.counters
    assert ledger.logged
