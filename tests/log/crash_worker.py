"""Child process for the crash tests: appends concurrently to a ``SqliteStore`` until killed.

    python crash_worker.py DATA_DIR CYCLE NEXT_SEQS_JSON

Prints one line per acknowledged append, flushed at once, so every line the parent reads names
an append whose call had returned (and so must survive ``kill -9``):

    P <cycle> <task> <n> <tail>            plain append
    I <task> <seq> <outcome> <tail>        idempotent-producer append (producer "prod<task>")

Payloads carry a checksum so a torn or partial message is detected (see ``parse_payload``).
Odd cycles checkpoint the WAL every few commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time

PLAIN_TASKS = 6
PRODUCER_TASKS = 6
MAX_SECONDS = 60.0  # bounded even if the parent never kills us


def make_payload(header: str, salt: int) -> bytes:
    """``header`` + deterministic filler of 1..4000 bytes + ``:`` + checksum of both."""
    size = salt * 7919 % 4000 + 1
    head = header.encode()
    pattern = head.replace(b":", b".")
    body = (pattern * (size // len(pattern) + 1))[:size]
    digest = hashlib.sha256(head + body).hexdigest()[:16].encode()
    return head + body + b":" + digest


def parse_payload(payload: bytes) -> tuple[str, ...]:
    """The header fields of a payload made by ``make_payload``; raise if it is torn."""
    content, _, digest = payload.rpartition(b":")
    if hashlib.sha256(content).hexdigest()[:16].encode() != digest:
        raise ValueError(f"torn or corrupt payload: {payload[:60]!r}...")
    fields = content.split(b":")
    return tuple(f.decode() for f in fields[:-1])  # the last field is the filler


def plain_payload(cycle: int, task: int, n: int) -> bytes:
    return make_payload(f"P:{cycle}:{task}:{n}:", cycle * 100_003 + task * 1009 + n)


def producer_payload(task: int, seq: int) -> bytes:
    return make_payload(f"I:{task}:{seq}:", task * 1009 + seq)


async def main(data_dir: str, cycle: int, next_seqs: dict[str, int]) -> None:
    from millstream.log import (
        AppendRequest,
        CreateRequest,
        ProducerClaim,
        SqliteStore,
        StreamConfig,
    )

    if cycle % 2:
        # Odd cycles checkpoint (and so reset the WAL) every few commits, so kills land
        # during checkpoints and WAL resets too.
        from millstream.log import _sqlite_writer

        _sqlite_writer.CHECKPOINT_FRAMES = 8
    store = SqliteStore(data_dir)
    await store.start()
    for path in ("plain", "idem"):
        await store.create(path, CreateRequest(StreamConfig("application/octet-stream")))
    print("READY", flush=True)
    deadline = time.monotonic() + MAX_SECONDS
    out = sys.stdout

    async def plain(task: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            result = await store.append("plain", AppendRequest([plain_payload(cycle, task, n)]))
            out.write(f"P {cycle} {task} {n} {result.tail}\n")
            out.flush()
            n += 1

    async def producer(task: int) -> None:
        seq = next_seqs.get(str(task), 0)
        while time.monotonic() < deadline:
            claim = ProducerClaim(f"prod{task}", 0, seq)
            request = AppendRequest([producer_payload(task, seq)], producer=claim)
            result = await store.append("idem", request)
            out.write(f"I {task} {seq} {result.outcome} {result.tail}\n")
            out.flush()
            seq += 1

    await asyncio.gather(
        *(plain(t) for t in range(PLAIN_TASKS)), *(producer(t) for t in range(PRODUCER_TASKS))
    )
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
