"""Bookkeeping for crash tests: which appends were acknowledged, and the checks that every one
of them survived exactly once, in order, untorn. Used by the store-level crash test and by the
HTTP durability test (``tests/test_durability.py``)."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .crash_worker import parse_payload

__all__ = ["Ledger", "run_until_killed"]


@dataclass
class Ledger:
    """Acknowledged appends across all cycles, and where each producer must resume."""

    plain_acked: dict[tuple[int, int, int], int] = field(default_factory=dict)  # key -> tail
    idem_acked: dict[tuple[int, int], int | None] = field(default_factory=dict)
    next_seqs: dict[int, int] = field(default_factory=dict)
    probes: list[bytes] = field(default_factory=list)

    def ack_plain(self, cycle: int, task: int, n: int, tail: int) -> None:
        self.plain_acked[(cycle, task, n)] = tail

    def ack_idem(self, task: int, seq: int, outcome: str, tail: int) -> None:
        # A duplicate answer reports the stream's tail, not the message's position.
        self.idem_acked[(task, seq)] = tail if outcome == "appended" else None
        self.next_seqs[task] = max(self.next_seqs.get(task, 0), seq + 1)

    def record_line(self, line: str) -> None:
        parts = line.split()
        if parts and parts[0] == "P":
            self.ack_plain(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]))
        elif parts and parts[0] == "I":
            self.ack_idem(int(parts[1]), int(parts[2]), parts[3], int(parts[4]))

    @property
    def acks(self) -> int:
        return len(self.plain_acked) + len(self.idem_acked)

    def verify(self, plain: Sequence[bytes], idem: Sequence[bytes]) -> None:
        """Raise AssertionError unless the stored streams hold every ack exactly once, in order."""
        plain_keys: list[tuple[int, ...]] = []
        for payload in plain:
            if payload in self.probes:
                plain_keys.append((-1, self.probes.index(payload)))
                continue
            kind, cycle, task, n = parse_payload(payload)
            assert kind == "P", payload[:40]
            plain_keys.append((int(cycle), int(task), int(n)))
        assert len(set(plain_keys)) == len(plain_keys), "a plain append is stored twice"
        for key, tail in self.plain_acked.items():
            assert tail <= len(plain_keys), f"acknowledged {key} at {tail} but the tail is lower"
            assert plain_keys[tail - 1] == key, f"acknowledged {key} is not at position {tail - 1}"
        runs: dict[tuple[int, int], list[int]] = defaultdict(list)
        for key in plain_keys:
            if key[0] >= 0:
                runs[key[:2]].append(key[2])
        for writer, ns in runs.items():
            assert ns == list(range(len(ns))), f"writer {writer} is out of order or has gaps"
        assert [k for k in plain_keys if k[0] == -1] == [(-1, i) for i in range(len(self.probes))]

        idem_keys: list[tuple[int, int]] = []
        for payload in idem:
            kind, task, seq = parse_payload(payload)
            assert kind == "I", payload[:40]
            idem_keys.append((int(task), int(seq)))
        assert len(set(idem_keys)) == len(idem_keys), "an idempotent append is stored twice"
        seqs: dict[int, list[int]] = defaultdict(list)
        for task, seq in idem_keys:
            seqs[task].append(seq)
        for task, stored in seqs.items():
            assert stored == list(range(len(stored))), f"producer {task} is out of order or gapped"
        present = set(idem_keys)
        for key, tail in self.idem_acked.items():
            assert key in present, f"acknowledged idempotent append {key} is missing"
            if tail is not None:
                assert idem_keys[tail - 1] == key, f"acknowledged {key} is not at {tail - 1}"


class Recorder(Protocol):
    def record_line(self, line: str) -> None: ...


def run_until_killed(
    argv: Sequence[str],
    ledger: Recorder,
    *,
    kill_after_acks: int,
    timeout: float = 60.0,
    ack_prefixes: bytes = b"PI",
) -> list[str]:
    """Run a crash worker, ``kill -9`` it once it acknowledged ``kill_after_acks`` more appends
    (lines starting with one of ``ack_prefixes``; plus a random moment), and record every
    complete line it printed. Returns its output."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    acked = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        count = 0
        for raw in process.stdout:
            if not raw.endswith(b"\n"):
                break  # cut off by the kill mid-line: that ack never reached us
            lines.append(raw.decode())
            count += bool(raw[:1]) and raw[:1] in ack_prefixes
            if count >= kill_after_acks:
                acked.set()
        acked.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not acked.wait(timeout):
            raise AssertionError("the crash worker acknowledged too little:\n" + "".join(lines))
        time.sleep(random.uniform(0, 0.05))
    finally:
        process.kill()
        process.wait()
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()
    for line in lines:
        ledger.record_line(line)
    assert process.returncode != 0 or any("READY" in line for line in lines), "".join(lines)
    return lines
