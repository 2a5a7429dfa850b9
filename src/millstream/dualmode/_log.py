"""Where durable generations live: one JSON stream per generation, in a ``millstream.log.Store``
in this process or on any Durable Streams server through ``millstream.client``.

A generation's stream holds, in order:

- a start record, ``{"start": {"args": "<sha256 of the endpoint's arguments>"}}``;
- one record per event, ``{"offset": "<its own offset>", "event": "<type>", "data": <value>}``
  (``event`` only when the event has a type; ``"failed": true`` on the error event written when
  the generator raised or was cancelled);
- then the stream is closed.

Each record carries its own offset, which is the SSE ``id:`` of the event, so a reader of any
Durable Streams server can tell which record each one is, whatever offsets the server uses and
however it groups messages. A reconnect with ``Last-Event-ID`` reads from that offset and
skips the record that has it. Against a remote server the writer therefore appends one record
per request (it learns each offset from the previous answer); in-process it appends everything
buffered at once, since a ``Store`` position is the offset.

Ownership: whoever creates the stream (``Store.create``), or appends the start record with
``Stream-Seq: 0`` first (remote), runs the generator; everyone else only reads.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import httpx
import orjson

from millstream.client import (
    AsyncDurableStream,
    DurableStreamError,
    SeqConflictError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
    astream,
)
from millstream.log import (
    AppendRequest,
    CreateRequest,
    InvalidRequest,
    LogError,
    Store,
    StreamConfig,
    StreamConflict,
    StreamGone,
    StreamNotFound,
    format_offset,
    parse_offset,
)

from ._errors import GenerationLogError, GenerationNotFoundError, LastEventIdError

__all__ = ["GenerationLog", "GenerationWriter", "RemoteLog", "StoreLog", "event_tail"]

CONTENT_TYPE = "application/json"
#: How long a reader waits for news before it says so (to send a heartbeat) when not told.
_FOREVER = 3600.0


def event_tail(event: str | None, data: bytes, failed: bool = False) -> bytes:
    """A record without its offset: the JSON text after ``{"offset":"..."``."""
    head = b',"event":' + orjson.dumps(event) if event is not None else b""
    if failed:
        head += b',"failed":true'
    return head + b',"data":' + data + b"}"


def _record(offset: str, tail: bytes) -> bytes:
    return b'{"offset":"' + offset.encode() + b'"' + tail


def start_record(fingerprint: str) -> bytes:
    return orjson.dumps({"start": {"args": fingerprint}})


class GenerationWriter(abc.ABC):
    """Appends one generation's records; only the generation's owner has one."""

    @abc.abstractmethod
    async def append(self, tails: list[bytes]) -> None:
        """Append records (``event_tail`` values), giving each its offset."""

    @abc.abstractmethod
    async def finish(self, tail: bytes | None) -> None:
        """Append ``tail`` (if any) as the last record and close the stream."""


class GenerationLog(abc.ABC):
    """One stream per generation key; see the module docstring for what it holds."""

    @abc.abstractmethod
    async def claim(self, key: str, fingerprint: str) -> GenerationWriter | None:
        """Create the generation's stream; a writer if this call created it, else None."""

    @abc.abstractmethod
    async def fingerprint(self, key: str) -> str | None:
        """The ``args`` of the generation's start record; None if there is no such generation."""

    @abc.abstractmethod
    def check_offset(self, offset: str) -> None:
        """Raise ``LastEventIdError`` if ``offset`` cannot be one of our event ids."""

    @abc.abstractmethod
    def read(
        self, key: str, after: str | None, idle: float | None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Event records after the one whose offset is ``after`` (all when None), in batches,
        live until the stream closes; an empty batch after each ``idle`` seconds of silence."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _events(payloads: Iterable[bytes]) -> list[dict[str, Any]]:
    records = [orjson.loads(p) for p in payloads]
    return [r for r in records if "offset" in r]


class StoreLog(GenerationLog):
    """Generations as streams ``<prefix>/<key>`` of a store in this process."""

    def __init__(self, store: Store, prefix: str, ttl: int | None) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.config = StreamConfig(CONTENT_TYPE, ttl_seconds=ttl)

    def path(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    async def claim(self, key: str, fingerprint: str) -> GenerationWriter | None:
        path = self.path(key)
        request = CreateRequest(self.config, messages=[start_record(fingerprint)])
        try:
            result = await self.store.create(path, request)
        except StreamConflict:
            return None  # a finished (closed) generation, or one created with another TTL
        except LogError as exc:
            raise GenerationLogError(f"cannot create {path!r}: {exc}") from exc
        if not result.created:
            return None
        return _StoreWriter(self.store, path, result.info.tail)

    async def fingerprint(self, key: str) -> str | None:
        try:
            result = await self.store.read(self.path(key), 0, max_bytes=1)
        except (StreamNotFound, StreamGone):
            return None
        except LogError as exc:
            raise GenerationLogError(str(exc)) from exc
        if not result.payloads:
            return None
        start = orjson.loads(result.payloads[0]).get("start")
        return start.get("args") if isinstance(start, dict) else None

    def check_offset(self, offset: str) -> None:
        position = parse_offset(offset)
        if position is None or position < 1:
            raise LastEventIdError(f"Last-Event-ID {offset!r} is not an event id of this endpoint")

    async def read(
        self, key: str, after: str | None, idle: float | None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        store, path = self.store, self.path(key)
        position = 1 if after is None else (parse_offset(after) or 0) + 1
        while True:
            try:
                result = await store.read(path, position)
            except (StreamNotFound, StreamGone) as exc:
                raise GenerationNotFoundError(f"no generation {key!r}") from exc
            except InvalidRequest as exc:
                raise LastEventIdError(f"Last-Event-ID {after!r} is past the end") from exc
            except LogError as exc:
                raise GenerationLogError(str(exc)) from exc
            if result.payloads:
                position = result.next
                yield _events(result.payloads)
                if not result.up_to_date:
                    continue  # more is there already; else wait before reading again
            if result.closed:
                return
            if store.notifier.closing:
                raise GenerationLogError("the store is shutting down")
            if not await store.wait(path, position, idle or _FOREVER):
                yield []


class _StoreWriter(GenerationWriter):
    def __init__(self, store: Store, path: str, tail: int) -> None:
        self.store = store
        self.path = path
        self.tail = tail

    async def append(self, tails: list[bytes]) -> None:
        await self._append(tails, close=False)

    async def finish(self, tail: bytes | None) -> None:
        await self._append([tail] if tail is not None else [], close=True)

    async def _append(self, tails: list[bytes], close: bool) -> None:
        start = self.tail
        messages = [_record(format_offset(start + i), t) for i, t in enumerate(tails)]
        try:
            result = await self.store.append(self.path, AppendRequest(messages, close=close))
        except LogError as exc:
            raise GenerationLogError(f"cannot append to {self.path!r}: {exc}") from exc
        if result.tail != start + len(messages):
            raise GenerationLogError(f"another writer appended to {self.path!r}")
        self.tail = result.tail


class RemoteLog(GenerationLog):
    """Generations as streams ``<url>/<key>`` on a Durable Streams server."""

    def __init__(self, url: str, ttl: int | None, *, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.ttl = ttl
        self.headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # One pool for every generation; created on first use, inside the running loop.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))
        return self._client

    def stream_url(self, key: str) -> str:
        return f"{self.url}/{key}"

    async def claim(self, key: str, fingerprint: str) -> GenerationWriter | None:
        url = self.stream_url(key)
        try:
            handle = await AsyncDurableStream.create(
                url,
                content_type=CONTENT_TYPE,
                ttl_seconds=self.ttl,
                headers=self.headers,
                batching=False,
                client=self.client,
            )
            started = await handle.append(start_record(fingerprint), seq="0")
        except (StreamExistsError, SeqConflictError, StreamClosedError):
            return None
        except DurableStreamError as exc:
            raise GenerationLogError(f"cannot create {url}: {exc}") from exc
        return _RemoteWriter(handle, started.next_offset)

    async def fingerprint(self, key: str) -> str | None:
        try:
            async with astream(
                self.stream_url(key), live=False, headers=self.headers, client=self.client
            ) as response:
                async for item in response.iter_json():
                    start = item.get("start") if isinstance(item, dict) else None
                    return start.get("args") if isinstance(start, dict) else None
        except StreamNotFoundError:
            return None
        except DurableStreamError as exc:
            raise GenerationLogError(str(exc)) from exc
        return None

    def check_offset(self, offset: str) -> None:
        # Offsets are opaque here; the server judges them. Refuse what we never send: the
        # protocol's sentinels (-1, now) and what no server's offsets look like.
        if offset in ("-1", "now") or len(offset) > 256 or not offset.isprintable():
            raise LastEventIdError(f"Last-Event-ID {offset!r} is not an event id of this endpoint")

    async def read(
        self, key: str, after: str | None, idle: float | None
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        queue: asyncio.Queue[list[dict[str, Any]] | BaseException | None] = asyncio.Queue(4)
        pump = asyncio.create_task(self._pump(key, after, queue))
        try:
            while True:
                try:
                    async with asyncio.timeout(idle or _FOREVER):
                        item = await queue.get()
                except TimeoutError:
                    yield []
                    continue
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(
        self,
        key: str,
        after: str | None,
        queue: asyncio.Queue[list[dict[str, Any]] | BaseException | None],
    ) -> None:
        try:
            async with astream(
                self.stream_url(key),
                offset=after or "-1",
                live="sse",
                headers=self.headers,
                client=self.client,
            ) as response:
                async for batch in response.iter_json_batches():
                    records = [r for r in batch if isinstance(r, dict) and "offset" in r]
                    if after is not None:
                        records = [r for r in records if r["offset"] > after]
                    if records:
                        await queue.put(records)
            await queue.put(None)
        except StreamNotFoundError:
            await queue.put(GenerationNotFoundError(f"no generation {key!r}"))
        except DurableStreamError as exc:
            error: BaseException = GenerationLogError(str(exc))
            if exc.status == 400:
                error = LastEventIdError(f"Last-Event-ID {after!r} is not an offset of {key!r}")
            await queue.put(error)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _RemoteWriter(GenerationWriter):
    def __init__(self, handle: AsyncDurableStream, offset: str) -> None:
        self.handle = handle
        self.offset = offset

    async def append(self, tails: list[bytes]) -> None:
        try:
            for tail in tails:
                result = await self.handle.append(_record(self.offset, tail))
                self.offset = result.next_offset
        except DurableStreamError as exc:
            raise GenerationLogError(f"cannot append to {self.handle.url}: {exc}") from exc

    async def finish(self, tail: bytes | None) -> None:
        try:
            await self.handle.close_stream(_record(self.offset, tail) if tail is not None else None)
        except DurableStreamError as exc:
            raise GenerationLogError(f"cannot close {self.handle.url}: {exc}") from exc
