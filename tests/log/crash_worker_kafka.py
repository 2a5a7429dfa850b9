"""Child process for the Kafka/key-value crash test: produces idempotent batches and writes
key-value state (alone, and together with appends) to a ``SqliteStore`` until killed.

    python crash_worker_kafka.py DATA_DIR CYCLE STATE_JSON

``STATE_JSON`` maps each producer task to ``[producer_id, next_seq]`` (``null`` producer id:
ask ``init_producer_id``). Prints one line per acknowledged call, flushed at once:

    ID <task> <producer_id>                           a producer id was handed out
    K <task> <seq> <count> <base_offset> <duplicate>  a batch was acknowledged
    V <task> <value>                                  counter/<task> was set by compare-and-set
    L <task> <n> <tail>                               kvlog got L:<task>:<n> with pos/<task> = n
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

try:
    from .crash_worker import make_payload
except ImportError:  # run as a script from tests/log
    from crash_worker import make_payload  # type: ignore[no-redef]

PRODUCERS = 4
KV_TASKS = 2
MAX_SECONDS = 60.0


def batch_count(task: int, seq: int) -> int:
    """Records in the batch that starts at ``seq``: fixed, so a resent batch is identical."""
    return (task * 7 + seq) % 3 + 1


def record_value(task: int, seq: int, i: int) -> bytes:
    return make_payload(f"K:{task}:{seq + i}:", task * 1009 + seq + i)


async def main(data_dir: str, cycle: int, state: dict[str, list[int | None]]) -> None:
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from helpers import kafka_batch

    from millstream.log import (
        AppendRequest,
        CreateRequest,
        KvConflict,
        KvWrite,
        SqliteStore,
        StreamConfig,
    )

    # Even cycles keep every batch in batch files, odd ones in the database: the log mixes both.
    store = SqliteStore(data_dir, **({"batch_file_min": 0} if cycle % 2 == 0 else {}))
    await store.start()
    for path in ("kafka", "kvlog"):
        await store.create(path, CreateRequest(StreamConfig("application/octet-stream")))
    print("READY", flush=True)
    deadline = time.monotonic() + MAX_SECONDS
    out = sys.stdout

    async def producer(task: int) -> None:
        pid, seq = state.get(str(task), [None, 0])
        if pid is None:
            pid, _ = await store.init_producer_id()
            out.write(f"ID {task} {pid}\n")
            out.flush()
        assert seq is not None
        while time.monotonic() < deadline:
            count = batch_count(task, seq)
            values = [record_value(task, seq, i) for i in range(count)]
            batch = kafka_batch(values, producer=(pid, 0, seq), compression=seq % 5)
            result = await store.produce("kafka", batch)
            out.write(f"K {task} {seq} {count} {result.base_offset} {int(result.duplicate)}\n")
            out.flush()
            seq += count

    async def counter(task: int) -> None:
        while time.monotonic() < deadline:
            item = await store.kv_get("crash", f"counter/{task}")
            value = int(item.value) + 1 if item else 1
            try:
                await store.kv_write(
                    [
                        KvWrite(
                            "crash",
                            f"counter/{task}",
                            str(value).encode(),
                            item.version if item else 0,
                        )
                    ]
                )
            except KvConflict:
                continue
            out.write(f"V {task} {value}\n")
            out.flush()

    async def logger(task: int) -> None:
        item = await store.kv_get("crash", f"pos/{task}")
        n = int(item.value) + 1 if item else 0
        version = item.version if item else 0
        while time.monotonic() < deadline:
            payload = make_payload(f"L:{task}:{n}:", task * 31 + n)
            write = KvWrite("crash", f"pos/{task}", str(n).encode(), version)
            result = await store.append("kvlog", AppendRequest([payload], kv=[write]))
            out.write(f"L {task} {n} {result.tail}\n")
            out.flush()
            item = await store.kv_get("crash", f"pos/{task}")
            assert item is not None
            version = item.version
            n += 1

    await asyncio.gather(
        *(producer(t) for t in range(PRODUCERS)),
        *(counter(t) for t in range(KV_TASKS)),
        *(logger(t) for t in range(KV_TASKS)),
    )
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])))
