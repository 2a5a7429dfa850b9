"""``StreamResponse`` / ``AsyncStreamResponse``: one-shot read results over a ``ReadSession``.

Everything but the loop that performs requests lives in ``_ResponseBase``; the twins differ
only in ``for`` versus ``async for``. A response is consumed once, in one way (bytes, text,
JSON, batches, events); a second consumption raises ``StreamConsumedError``.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, Literal, TypeVar, overload

import httpx

from millstream.client import _core
from millstream.client._errors import (
    DurableStreamError,
    FetchError,
    SSEBytesIterationError,
    StreamConsumedError,
)
from millstream.client._read import Chunk, ReadSession
from millstream.client._types import OnError, StreamEvent

__all__ = ["AsyncStreamResponse", "StreamResponse"]

T = TypeVar("T")
EventMode = Literal["bytes", "text", "json"]
_READY = object()


def _retry_after(error: DurableStreamError) -> float | None:
    if isinstance(error, FetchError):
        return _core.parse_retry_after(error.headers.get("retry-after"))
    return None


class _ResponseBase:
    """State and per-chunk decoding shared by both twins."""

    def __init__(
        self,
        session: ReadSession,
        *,
        policy: _core.RetryPolicy,
        on_error: OnError | None,
    ) -> None:
        self._session = session
        self._policy = policy
        self._on_error = on_error
        self._consumed_by: str | None = None
        self._closed = False

    # Metadata the caller may inspect while or after reading.
    @property
    def url(self) -> str:
        return self._session.url

    @property
    def offset(self) -> str:
        """The offset after the last data handed out: pass it as ``offset=`` to resume."""
        return self._session.offset

    @property
    def cursor(self) -> str | None:
        return self._session.cursor

    @property
    def up_to_date(self) -> bool:
        return self._session.up_to_date

    @property
    def stream_closed(self) -> bool:
        """True once the read reached the end of a closed stream (EOF)."""
        return self._session.closed

    @property
    def content_type(self) -> str | None:
        return self._session.content_type

    @property
    def live(self) -> object:
        return self._session.live

    def _consume(self, method: str) -> None:
        if self._consumed_by is not None:
            raise StreamConsumedError(method, self._consumed_by)
        self._consumed_by = method

    def _no_sse_bytes(self) -> None:
        if self._session.is_sse:
            raise SSEBytesIterationError()

    def _event(self, chunk: Chunk, mode: EventMode) -> StreamEvent[Any]:
        data: Any
        if mode == "json":
            data = chunk.json()
        elif mode == "text":
            data = chunk.text()
        else:
            data = chunk.data if chunk.parts is None else chunk.text().encode()
        return StreamEvent(data, chunk.next_offset, chunk.up_to_date, chunk.cursor, chunk.closed)

    @staticmethod
    def _want_event(chunk: Chunk, last_up_to_date: bool) -> bool:
        # Data always; an empty chunk only when it says something new (caught up, or EOF).
        return not chunk.empty or chunk.closed or (chunk.up_to_date and not last_up_to_date)

    def _failure(self, exc: Exception, attempt: int, mid_body: bool) -> tuple[float, bool] | None:
        """How to react to a failed request: (seconds to wait, whether it counts as a retry),
        or None to hand the error to ``on_error``.

        A live read whose connection drops after the server answered is reconnected without
        spending the retry budget (like EventSource): a tail is meant to outlive blips."""
        error = self._as_error(exc)
        if self._session.reconnect_now(error):
            return 0.0, False
        if mid_body and self._session.live_request and isinstance(exc, httpx.TransportError):
            return self._policy.delay(0), False
        if error.retryable and attempt < self._policy.max_retries:
            return self._policy.delay(attempt, _retry_after(error)), True
        return None

    def _as_error(self, exc: Exception) -> DurableStreamError:
        if isinstance(exc, DurableStreamError):
            return exc
        return _core.transport_error(exc, self._session.url)


class StreamResponse(_ResponseBase):
    """The result of ``stream()``: iterate it (bytes) or call one ``iter_*`` / ``read_*``."""

    def __init__(
        self,
        session: ReadSession,
        client: httpx.Client,
        *,
        owns_client: bool,
        policy: _core.RetryPolicy,
        on_error: OnError | None,
    ) -> None:
        super().__init__(session, policy=policy, on_error=on_error)
        self._client = client
        self._owns_client = owns_client
        self._chunks = self._run()
        try:
            first = next(self._chunks)  # the first request: errors such as 404 raise here
        except BaseException:
            self.close()
            raise
        assert first is _READY

    def _run(self) -> Generator[Any, None, None]:
        session, attempt, ready = self._session, 0, False
        while not session.done:
            request = session.next_request()
            mid_body = False
            try:
                with self._client.stream(
                    "GET",
                    request.url,
                    params=request.params,
                    headers=request.headers,
                    timeout=request.timeout,
                ) as response:
                    if response.status_code >= 400:
                        raise session.error_for(
                            response.status_code, response.headers, response.read()
                        )
                    kind = session.on_head(response.status_code, response.headers)
                    mid_body = True
                    if not ready:
                        ready = True
                        yield _READY
                    if kind == "sse":
                        try:
                            for raw in response.iter_bytes():
                                for chunk in session.feed_sse(raw):
                                    attempt = 0
                                    yield chunk
                                if session.finished():
                                    break
                        finally:
                            session.end_sse()
                    else:
                        chunk = session.on_body(
                            response.status_code, response.headers, response.read()
                        )
                        attempt = 0
                        yield chunk
            except (httpx.TransportError, DurableStreamError) as exc:
                plan = self._failure(exc, attempt, mid_body)
                if plan is not None:
                    time.sleep(plan[0])
                    attempt += plan[1]
                    continue
                error = self._as_error(exc)
                fix = None
                if self._on_error is not None:
                    result = self._on_error(error)
                    if inspect.isawaitable(result):
                        raise TypeError("stream(on_error=) must be a plain function") from error
                    fix = _core.call_on_error_result(result)
                if fix is None:
                    if error is exc:
                        raise
                    raise error from exc
                session.apply_fix(*fix)
                attempt = 0

    def _iter_chunks(self) -> Iterator[Chunk]:
        try:
            yield from self._chunks
        finally:
            self.close()

    # --- consumption ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def iter_bytes(self) -> Iterator[bytes]:
        """Raw bytes as they arrive (not available with ``live='sse'``)."""
        self._consume("iter_bytes")
        self._no_sse_bytes()
        return (c.data for c in self._iter_chunks() if c.data)

    def iter_text(self, encoding: str = "utf-8") -> Iterator[str]:
        """Text as it arrives; multi-byte characters split across responses are kept whole."""
        self._consume("iter_text")
        return self._text(encoding)

    def _text(self, encoding: str) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(encoding)()
        for chunk in self._iter_chunks():
            text = chunk.text() if chunk.parts is not None else decoder.decode(chunk.data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    @overload
    def iter_json(self) -> Iterator[Any]: ...
    @overload
    def iter_json(self, decode: Callable[[Any], T]) -> Iterator[T]: ...
    def iter_json(self, decode: Callable[[Any], Any] | None = None) -> Iterator[Any]:
        """JSON messages one by one (arrays of a JSON stream are flattened)."""
        self._consume("iter_json")
        return self._json(decode)

    def _json(self, decode: Callable[[Any], Any] | None) -> Iterator[Any]:
        for chunk in self._iter_chunks():
            items = chunk.json()
            yield from (map(decode, items) if decode else items)

    def iter_json_batches(self, decode: Callable[[Any], Any] | None = None) -> Iterator[list[Any]]:
        """JSON messages as the lists the server sent them in."""
        self._consume("iter_json_batches")
        return self._json_batches(decode)

    def _json_batches(self, decode: Callable[[Any], Any] | None) -> Iterator[list[Any]]:
        for chunk in self._iter_chunks():
            items = chunk.json()
            if items:
                yield [decode(i) for i in items] if decode else items

    def iter_events(self, mode: EventMode = "bytes") -> Iterator[StreamEvent[Any]]:
        """``StreamEvent``s with offset, up-to-date and cursor; ``mode`` picks the data type."""
        self._consume("iter_events")
        return self._events(mode)

    def _events(self, mode: EventMode) -> Iterator[StreamEvent[Any]]:
        last_up_to_date = False
        for chunk in self._iter_chunks():
            if self._want_event(chunk, last_up_to_date):
                last_up_to_date = chunk.up_to_date
                yield self._event(chunk, mode)

    def read_bytes(self) -> bytes:
        """All bytes up to the end (up-to-date for ``live=False``/``"auto"``, else EOF)."""
        self._session.for_read_all()
        return b"".join(self.iter_bytes())

    def read_text(self, encoding: str = "utf-8") -> str:
        self._session.for_read_all()
        return "".join(self.iter_text(encoding))

    def read_json(self, decode: Callable[[Any], Any] | None = None) -> list[Any]:
        self._session.for_read_all()
        return list(self.iter_json(decode) if decode else self.iter_json())

    def read_json_batches(self, decode: Callable[[Any], Any] | None = None) -> list[list[Any]]:
        self._session.for_read_all()
        return list(self.iter_json_batches(decode))

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and release the connection."""
        if self._closed:
            return
        self._closed = True
        self._chunks.close()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamResponse(_ResponseBase):
    """The result of ``astream()``: ``async for`` it (bytes) or use one ``iter_*``/``read_*``."""

    def __init__(
        self,
        session: ReadSession,
        client: httpx.AsyncClient,
        *,
        owns_client: bool,
        policy: _core.RetryPolicy,
        on_error: OnError | None,
    ) -> None:
        super().__init__(session, policy=policy, on_error=on_error)
        self._client = client
        self._owns_client = owns_client
        self._chunks = self._run()

    async def _start(self) -> AsyncStreamResponse:
        try:
            first = await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise
        assert first is _READY
        return self

    async def _run(self) -> AsyncIterator[Any]:
        session, attempt, ready = self._session, 0, False
        while not session.done:
            request = session.next_request()
            mid_body = False
            try:
                async with self._client.stream(
                    "GET",
                    request.url,
                    params=request.params,
                    headers=request.headers,
                    timeout=request.timeout,
                ) as response:
                    if response.status_code >= 400:
                        raise session.error_for(
                            response.status_code, response.headers, await response.aread()
                        )
                    kind = session.on_head(response.status_code, response.headers)
                    mid_body = True
                    if not ready:
                        ready = True
                        yield _READY
                    if kind == "sse":
                        try:
                            async for raw in response.aiter_bytes():
                                for chunk in session.feed_sse(raw):
                                    attempt = 0
                                    yield chunk
                                if session.finished():
                                    break
                        finally:
                            session.end_sse()
                    else:
                        chunk = session.on_body(
                            response.status_code, response.headers, await response.aread()
                        )
                        attempt = 0
                        yield chunk
            except (httpx.TransportError, DurableStreamError) as exc:
                plan = self._failure(exc, attempt, mid_body)
                if plan is not None:
                    await asyncio.sleep(plan[0])
                    attempt += plan[1]
                    continue
                error = self._as_error(exc)
                fix = None
                if self._on_error is not None:
                    result = self._on_error(error)
                    if inspect.isawaitable(result):
                        result = await result
                    fix = _core.call_on_error_result(result)
                if fix is None:
                    if error is exc:
                        raise
                    raise error from exc
                session.apply_fix(*fix)
                attempt = 0

    async def _iter_chunks(self) -> AsyncIterator[Chunk]:
        try:
            async for chunk in self._chunks:
                yield chunk
        finally:
            await self.aclose()

    # --- consumption ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_bytes()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Raw bytes as they arrive (not available with ``live='sse'``)."""
        self._consume("iter_bytes")
        self._no_sse_bytes()
        return self._bytes()

    async def _bytes(self) -> AsyncIterator[bytes]:
        async for chunk in self._iter_chunks():
            if chunk.data:
                yield chunk.data

    def iter_text(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        """Text as it arrives; multi-byte characters split across responses are kept whole."""
        self._consume("iter_text")
        return self._text(encoding)

    async def _text(self, encoding: str) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder(encoding)()
        async for chunk in self._iter_chunks():
            text = chunk.text() if chunk.parts is not None else decoder.decode(chunk.data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def iter_json(self, decode: Callable[[Any], Any] | None = None) -> AsyncIterator[Any]:
        """JSON messages one by one (arrays of a JSON stream are flattened)."""
        self._consume("iter_json")
        return self._json(decode)

    async def _json(self, decode: Callable[[Any], Any] | None) -> AsyncIterator[Any]:
        async for chunk in self._iter_chunks():
            for item in chunk.json():
                yield decode(item) if decode else item

    def iter_json_batches(
        self, decode: Callable[[Any], Any] | None = None
    ) -> AsyncIterator[list[Any]]:
        """JSON messages as the lists the server sent them in."""
        self._consume("iter_json_batches")
        return self._json_batches(decode)

    async def _json_batches(self, decode: Callable[[Any], Any] | None) -> AsyncIterator[list[Any]]:
        async for chunk in self._iter_chunks():
            items = chunk.json()
            if items:
                yield [decode(i) for i in items] if decode else items

    def iter_events(self, mode: EventMode = "bytes") -> AsyncIterator[StreamEvent[Any]]:
        """``StreamEvent``s with offset, up-to-date and cursor; ``mode`` picks the data type."""
        self._consume("iter_events")
        return self._events(mode)

    async def _events(self, mode: EventMode) -> AsyncIterator[StreamEvent[Any]]:
        last_up_to_date = False
        async for chunk in self._iter_chunks():
            if self._want_event(chunk, last_up_to_date):
                last_up_to_date = chunk.up_to_date
                yield self._event(chunk, mode)

    async def read_bytes(self) -> bytes:
        self._session.for_read_all()
        return b"".join([b async for b in self.iter_bytes()])

    async def read_text(self, encoding: str = "utf-8") -> str:
        self._session.for_read_all()
        return "".join([t async for t in self.iter_text(encoding)])

    async def read_json(self, decode: Callable[[Any], Any] | None = None) -> list[Any]:
        self._session.for_read_all()
        return [i async for i in self.iter_json(decode)]

    async def read_json_batches(
        self, decode: Callable[[Any], Any] | None = None
    ) -> list[list[Any]]:
        self._session.for_read_all()
        return [b async for b in self.iter_json_batches(decode)]

    # --- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        if self._closed:
            return
        self._closed = True
        await self._chunks.aclose()  # type: ignore[attr-defined]
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncStreamResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
