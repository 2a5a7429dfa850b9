"""The disk spool: FIFO segments, the byte bound, torn tails, and segments shared by processes
(a segment is replayed by exactly one of them; a dead writer's segments are picked up)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from millstream.telemetry._spool import MAGIC, Spool


def drain(spool: Spool) -> list[bytes]:
    records: list[bytes] = []
    while (segment := spool.claim_oldest()) is not None:
        records.extend(segment.records)
        segment.done()
    return records


def test_fifo_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    payloads = [f"event-{i}".encode() for i in range(50)]
    assert spool.append(payloads[:20]) == 20
    assert spool.append(payloads[20:]) == 30
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert drain(spool) == payloads
    assert not list(tmp_path.glob("*.seg"))
    assert spool.size == 0


def test_bound_refuses_the_excess(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=200)
    written = spool.append([b"x" * 50] * 10)
    assert 0 < written < 10  # a prefix fits
    assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) <= 200
    assert spool.append([b"y"]) in (0, 1)
    assert drain(spool)[:written] == [b"x" * 50] * written


def test_torn_tail_ends_the_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append([b"first", b"second"])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = segment.read_bytes()
    segment.write_bytes(data[:-3])  # a crash mid-write
    assert drain(Spool(tmp_path, max_bytes=1 << 20)) == [b"first"]
    (tmp_path / "0-garbage.seg").write_bytes(b"not a spool")
    assert drain(Spool(tmp_path, max_bytes=1 << 20)) == []
    assert data.startswith(MAGIC)


def test_a_writing_process_keeps_its_segment(tmp_path: Path) -> None:
    """Another process cannot claim a segment still being written; once the writer exits (even
    killed), its segment is claimable and replayed exactly once."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from millstream.telemetry._spool import Spool
        spool = Spool(Path({str(tmp_path)!r}), max_bytes=1 << 20)
        spool.append([b"from-child-1", b"from-child-2"])
        print("written", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        here = Spool(tmp_path, max_bytes=1 << 20)
        assert here.claim_oldest() is None  # locked by the live writer
        child.kill()
        child.wait()
        first = here.claim_oldest()
        assert first is not None
        assert first.records == [b"from-child-1", b"from-child-2"]
        other = Spool(tmp_path, max_bytes=1 << 20)
        assert other.claim_oldest() is None  # claimed by `here`
        first.done()
        assert other.claim_oldest() is None
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
