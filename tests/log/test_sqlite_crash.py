"""``kill -9`` a process in the middle of concurrent appends; every acknowledged append must be
in the file exactly once, in order, untorn, and appends continue at the right position."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from millstream.log import AppendRequest, SqliteStore

from .crash_check import Ledger, run_until_killed
from .helpers import read_all

WORKER = Path(__file__).with_name("crash_worker.py")
CYCLES = 4


@pytest.mark.slow
async def test_kill_9_during_concurrent_appends_loses_no_acknowledged_append(
    tmp_path: Path,
) -> None:
    ledger = Ledger()
    data_dir = tmp_path / "data"
    for cycle in range(CYCLES):
        seqs = json.dumps({str(task): seq for task, seq in ledger.next_seqs.items()})
        argv = [sys.executable, str(WORKER), str(data_dir), str(cycle), seqs]
        before = ledger.acks
        lines = await asyncio.to_thread(
            run_until_killed, argv, ledger, kill_after_acks=400 + 300 * cycle
        )
        assert ledger.acks > before, "".join(lines[-20:])
        store = SqliteStore(data_dir)
        try:
            plain = await read_all(store, "plain")
            idem = await read_all(store, "idem")
            ledger.verify(plain, idem)
            probe = f"probe-{cycle}".encode()
            ledger.probes.append(probe)
            result = await store.append("plain", AppendRequest([probe]))
            assert result.tail == len(plain) + 1  # appends continue right after the recovered tail
            assert (await store.head("idem")).tail == len(idem)
        finally:
            await store.aclose()
    assert len(ledger.plain_acked) > 1000
    assert ledger.next_seqs
