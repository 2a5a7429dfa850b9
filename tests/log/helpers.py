"""Short helpers for the store suite."""

from __future__ import annotations

from collections.abc import Sequence

from millstream.log import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    ForkSpec,
    ProducerClaim,
    Store,
    StreamConfig,
)

TEXT = StreamConfig("text/plain")
JSON = StreamConfig("application/json")
BYTES = StreamConfig("application/octet-stream")


async def create(
    store: Store,
    path: str,
    *messages: bytes,
    config: StreamConfig = TEXT,
    closed: bool = False,
    fork: ForkSpec | None = None,
) -> CreateResult:
    return await store.create(path, CreateRequest(config, list(messages), closed, fork))


async def append(
    store: Store,
    path: str,
    *messages: bytes,
    producer: tuple[str, int, int] | None = None,
    stream_seq: str | None = None,
    close: bool = False,
    content_type: str | None = None,
) -> AppendResult:
    claim = ProducerClaim(*producer) if producer is not None else None
    request = AppendRequest(list(messages), content_type, stream_seq, claim, close)
    return await store.append(path, request)


async def read_all(
    store: Store, path: str, start: int = 0, max_bytes: int = 1 << 20
) -> list[bytes]:
    """Every message from ``start`` to the tail, following ``next`` chunk by chunk."""
    out: list[bytes] = []
    while True:
        result = await store.read(path, start, max_bytes=max_bytes)
        assert result.start == start
        assert result.next == start + len(result.payloads)
        out.extend(result.payloads)
        if result.up_to_date:
            return out
        assert result.payloads, "a read before the tail must make progress"
        start = result.next


def numbered(prefix: str, count: int) -> Sequence[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]
