"""``StreamResponse`` / ``AsyncStreamResponse``: one-shot read results over a ``ReadSession``.

Everything but I/O lives in ``_ResponseBase``: the read flow (requests, retries, reconnects,
``on_error``) is one generator driven by ``_io``, and each way of consuming (bytes, text, JSON,
batches, events) is an ``_Output`` turning chunks into lists of values. The twins only loop:
``for`` versus ``async for``. A response is consumed once, in one way; a second consumption
raises ``StreamConsumedError``.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, Generic, Literal, Self, TypeVar, overload

import httpx

from millstream import _httppool
from millstream.client import _core
from millstream.client._core import Call, NextPiece, Pieces, ReadAll, RetryPolicy
from millstream.client._errors import (
    DurableStreamError,
    FetchError,
    SSEBytesIterationError,
    SSEReadAllError,
    StreamConsumedError,
)
from millstream.client._io import AsyncIO, SyncIO
from millstream.client._read import Chunk, ReadSession
from millstream.client._types import HeadersLike, LiveMode, OnError, ParamsLike, StreamEvent

__all__ = ["AsyncStreamResponse", "StreamResponse"]

T = TypeVar("T")
ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
EventMode = Literal["bytes", "text", "json", "json_batches"]
Decode = Callable[[Any], Any] | None
_READY = object()


def _retry_after(error: DurableStreamError) -> float | None:
    if isinstance(error, FetchError):
        return _core.parse_retry_after(error.headers.get("retry-after"))
    return None


# --- Ways of consuming: chunks in, lists of values out ---------------------------------------


class _Output(Generic[T]):
    """One way of consuming a read; ``feed`` each chunk, then ``end``."""

    method = "iter_bytes"
    sse_ok = False

    def feed(self, chunk: Chunk) -> list[T]:
        raise NotImplementedError

    def end(self) -> list[T]:
        return []


class _Bytes(_Output[bytes]):
    def feed(self, chunk: Chunk) -> list[bytes]:
        return [chunk.data] if chunk.data else []


class _Text(_Output[str]):
    """Multi-byte characters split across responses are kept whole."""

    method, sse_ok = "iter_text", True

    def __init__(self, encoding: str, method: str = "iter_text") -> None:
        self.method = method
        self._decoder = codecs.getincrementaldecoder(encoding)()

    def feed(self, chunk: Chunk) -> list[str]:
        text = chunk.text() if chunk.parts is not None else self._decoder.decode(chunk.data)
        return [text] if text else []

    def end(self) -> list[str]:
        tail = self._decoder.decode(b"", final=True)
        return [tail] if tail else []


class _Json(_Output[Any]):
    method, sse_ok = "iter_json", True

    def __init__(self, decode: Decode, method: str | None = None) -> None:
        self._decode = decode
        self.method = method or type(self).method

    def feed(self, chunk: Chunk) -> list[Any]:
        items = chunk.json()
        return list(map(self._decode, items)) if self._decode else items


class _Batches(_Json):
    method = "iter_json_batches"

    def feed(self, chunk: Chunk) -> list[Any]:
        items = super().feed(chunk)
        return [items] if items else []


class _Events(_Output[StreamEvent[Any]]):
    """Data always; an empty chunk (``data=None``) when up to date or at EOF, so a live
    reader hears of every long-poll or SSE round that brought nothing (and can stop).
    ``json``/``json_batches``: the chunk's messages as a list."""

    method, sse_ok = "iter_events", True

    def __init__(self, mode: EventMode, encoding: str, decode: Decode) -> None:
        if mode not in ("bytes", "text", "json", "json_batches"):
            raise ValueError(f"mode must be bytes, text, json or json_batches, not {mode!r}")
        self._mode = mode
        self._encoding = encoding
        self._decode = decode

    def feed(self, chunk: Chunk) -> list[StreamEvent[Any]]:
        data: Any = None
        if chunk.empty:
            pass
        elif self._mode in ("json", "json_batches"):
            data = chunk.json() or None  # an empty array says nothing either
            if data is not None and self._decode is not None:
                data = list(map(self._decode, data))
        elif self._mode == "text":
            data = chunk.text(self._encoding)
        else:
            data = chunk.data if chunk.parts is None else chunk.text().encode()
        if data is None and not chunk.closed and not chunk.up_to_date:
            return []
        event = StreamEvent(data, chunk.next_offset, chunk.up_to_date, chunk.cursor, chunk.closed)
        return [event]


class _FromSession(Generic[T]):
    """A read-only attribute mirroring the session's: metadata to inspect while reading."""

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> _FromSession[T]: ...
    @overload
    def __get__(self, obj: _ResponseBase[Any], owner: type) -> T: ...
    def __get__(self, obj: _ResponseBase[Any] | None, owner: type) -> Any:
        return self if obj is None else getattr(obj._session, self.name)


class _ResponseBase(Generic[ClientT]):
    """State, the read flow and consumption shared by both twins."""

    def __init__(
        self,
        session: ReadSession,
        client: ClientT,
        *,
        owns_client: bool,
        policy: RetryPolicy,
        on_error: OnError | None,
    ) -> None:
        self._session = session
        self._client: ClientT = client
        self._owns_client = owns_client
        self._policy = policy
        self._on_error = on_error
        self._consumed_by: str | None = None
        self._closed = False
        self._begin()

    def _begin(self) -> None:
        raise NotImplementedError

    @classmethod
    def _new_client(cls) -> ClientT:
        raise NotImplementedError

    @classmethod
    def _open(
        cls,
        url: str,
        *,
        offset: str | None = None,
        live: LiveMode = True,
        cursor: str | None = None,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        on_error: OnError | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        client: ClientT | None = None,
    ) -> Self:
        """Start reading ``url`` from ``offset`` (default: the beginning).

        ``stream()`` makes the first request at once, so a missing stream raises
        ``StreamNotFoundError`` here; ``astream()`` makes it on ``await`` or ``async with``
        and accepts async ``on_error`` and header/param functions. ``headers``/``params``
        values may be callables, called before every request. ``live=True`` is ``"auto"``.
        ``timeout=`` bounds each request, and a live read's wait too: when it expires the
        read raises ``FetchTimeoutError`` (without it, idle live reads reconnect)."""
        session = ReadSession(
            url,
            offset=offset,
            live=live,
            headers=headers,
            params=params,
            timeout=timeout,
            cursor=cursor,
        )
        return cls(
            session,
            client or cls._new_client(),
            owns_client=client is None,
            policy=retry or RetryPolicy(),
            on_error=on_error,
        )

    url = _FromSession[str]("url")
    offset = _FromSession[str]("offset", "The offset after the data handed out: resume there.")
    start_offset = _FromSession[str]("start_offset", "The offset the read started from.")
    cursor = _FromSession["str | None"]("cursor")
    up_to_date = _FromSession[bool]("up_to_date")
    stream_closed = _FromSession[bool]("closed", "True once the read reached EOF.")
    content_type = _FromSession["str | None"]("content_type")
    status = _FromSession[int]("status", "The most recent response's HTTP status.")
    status_text = _FromSession[str]("reason", "The most recent response's reason phrase.")
    headers = _FromSession["dict[str, str]"]("response_headers", "The most recent headers.")

    @property
    def live(self) -> LiveMode:
        """The live mode, as the official client reports it (``True`` for auto)."""
        live = self._session.live
        return True if live == "auto" else live

    @property
    def ok(self) -> bool:
        """The most recent response was a 2xx."""
        return 200 <= self._session.status < 300

    @property
    def closed(self) -> bool:
        """This response was closed (the stream's own closure is ``stream_closed``)."""
        return self._closed

    def _output(self, output: _Output[T]) -> _Output[T]:
        """Claim the one consumption this response allows."""
        if self._consumed_by is not None:
            raise StreamConsumedError(output.method, self._consumed_by)
        self._consumed_by = output.method
        if self._session.is_sse and not output.sse_ok:
            raise SSEBytesIterationError()
        return output

    def _read_all(self, output: _Output[T], method: str) -> _Output[T]:
        """``read_*``: stop at up-to-date; an SSE read never ends by itself, so refuse."""
        if self._session.is_sse and self._consumed_by is None:
            if method == "read_bytes":
                raise SSEBytesIterationError()
            raise SSEReadAllError(method)
        self._session.for_read_all()
        return self._output(output)

    # --- the read flow -------------------------------------------------------------------

    def _flow(self) -> Generator[Any, Any, None]:
        """Every request of the read: hands out ``_READY`` once the first answered, then chunks."""
        session, attempt, ready = self._session, 0, False
        while not session.done:
            mid_body = False
            try:
                request = session.next_request()
                request.stream = True
                response: httpx.Response = yield from _core.ask(request)
                if response.status_code >= 400:
                    body = yield from _core.ask(ReadAll(response))
                    raise session.error_for(response.status_code, response.headers, body)
                kind = session.on_head(
                    response.status_code, response.reason_phrase, response.headers
                )
                mid_body = True
                if kind == "sse":
                    if not ready:
                        ready = True
                        yield _READY
                    try:
                        pieces = yield Pieces(response)
                        while (raw := (yield from _core.ask(NextPiece(pieces)))) is not None:
                            for chunk in session.feed_sse(raw):
                                attempt = 0
                                yield chunk
                            if session.finished():
                                break
                    finally:
                        session.end_sse()
                else:
                    # The first body is read before stream() returns, so offset, up_to_date
                    # and cursor describe the first response from the start (as officially).
                    body = yield from _core.ask(ReadAll(response))
                    chunk = session.on_body(response.status_code, response.headers, body)
                    attempt = 0
                    if not ready:
                        ready = True
                        yield _READY
                    yield chunk
            except (httpx.TransportError, DurableStreamError) as exc:
                plan = self._failure(exc, attempt, mid_body)
                if plan is not None:
                    yield _core.Sleep(plan[0])
                    attempt += plan[1]
                    continue
                error = self._as_error(exc)
                fix = None
                if self._on_error is not None:
                    result = yield Call(self._on_error, error, "stream(on_error=)")
                    fix = _core.call_on_error_result(result)
                if fix is None:
                    if error is exc:
                        raise
                    raise error from exc
                session.apply_fix(*fix)
                attempt = 0

    def _failure(self, exc: Exception, attempt: int, mid_body: bool) -> tuple[float, bool] | None:
        """How to react to a failed request: (seconds to wait, whether it counts as a retry),
        or None to hand the error to ``on_error``.

        A live read whose connection drops after the server answered is reconnected without
        spending the retry budget (like EventSource): a tail is meant to outlive blips."""
        error = self._as_error(exc)
        if self._session.timed_out(error):
            return None
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


class StreamResponse(_ResponseBase[httpx.Client]):
    """The result of ``stream()``: iterate it (bytes) or call one ``iter_*`` / ``read_*``."""

    @classmethod
    def _new_client(cls) -> httpx.Client:
        return _httppool.sync_client(
            timeout=_core.DEFAULT_TIMEOUT, follow_redirects=True, verify=_core.ssl_context()
        )

    def _begin(self) -> None:
        self._chunks = SyncIO(self._client).pump(self._flow())
        try:
            first = next(self._chunks)  # the first request: errors such as 404 raise here
        except BaseException:
            self.close()
            raise
        assert first is _READY

    def _lists(self, output: _Output[T]) -> Iterator[list[T]]:
        try:
            for chunk in self._chunks:
                yield output.feed(chunk)
            yield output.end()
        finally:
            self.close()

    def _iterate(self, output: _Output[T]) -> Iterator[T]:
        return itertools.chain.from_iterable(self._lists(output))

    # --- consumption ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def iter_bytes(self) -> Iterator[bytes]:
        """Raw bytes as they arrive (not available with ``live='sse'``)."""
        return self._iterate(self._output(_Bytes()))

    def iter_text(self, encoding: str = "utf-8") -> Iterator[str]:
        """Text as it arrives; multi-byte characters split across responses are kept whole."""
        return self._iterate(self._output(_Text(encoding)))

    @overload
    def iter_json(self) -> Iterator[Any]: ...
    @overload
    def iter_json(self, decode: Callable[[Any], T]) -> Iterator[T]: ...
    def iter_json(self, decode: Decode = None) -> Iterator[Any]:
        """JSON messages one by one (arrays of a JSON stream are flattened)."""
        return self._iterate(self._output(_Json(decode)))

    def iter_json_batches(self, decode: Decode = None) -> Iterator[list[Any]]:
        """JSON messages as the lists the server sent them in."""
        return self._iterate(self._output(_Batches(decode)))

    def iter_events(
        self, mode: EventMode = "json", *, encoding: str = "utf-8", decode: Decode = None
    ) -> Iterator[StreamEvent[Any]]:
        """``StreamEvent``s with offset, up-to-date and cursor; ``mode`` picks the data type
        (``json`` by default: each event's messages as a list)."""
        return self._iterate(self._output(_Events(mode, encoding, decode)))

    def read_bytes(self) -> bytes:
        """All bytes up to the end (up to date, or EOF); not available with ``live='sse'``."""
        pieces: list[bytes] = list(self._iterate(self._read_all(_Bytes(), "read_bytes")))
        return b"".join(pieces)

    def read_text(self, encoding: str = "utf-8") -> str:
        """All text up to the end (up to date, or EOF)."""
        output = _Text(encoding, "read_text")
        return "".join(self._iterate(self._read_all(output, "read_text")))

    def read_json(self, decode: Decode = None) -> list[Any]:
        """All JSON messages up to the end (up to date, or EOF), arrays flattened."""
        return list(self._iterate(self._read_all(_Json(decode, "read_json"), "read_json")))

    def read_json_batches(self, decode: Decode = None) -> list[list[Any]]:
        """All JSON messages up to the end, in the lists the server sent them in."""
        output = _Batches(decode, "read_json_batches")
        return list(self._iterate(self._read_all(output, "read_json_batches")))

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading and release the connection."""
        if not self._closed:
            self._closed = True
            self._chunks.close()
            if self._owns_client:
                self._client.close()

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamResponse(_ResponseBase[httpx.AsyncClient]):
    """The result of ``astream()``: ``async with`` or ``await`` it first, then ``async for``
    it (bytes) or use one ``iter_*`` / ``read_*``."""

    @classmethod
    def _new_client(cls) -> httpx.AsyncClient:
        return _httppool.async_client(
            timeout=_core.DEFAULT_TIMEOUT, follow_redirects=True, verify=_core.ssl_context()
        )

    def _begin(self) -> None:
        self._chunks = AsyncIO(self._client).pump(self._flow())
        self._started = False

    async def _start(self) -> AsyncStreamResponse:
        """The first request: errors such as 404 raise here."""
        if not self._started:
            self._started = True
            try:
                first = await anext(self._chunks)
            except BaseException:
                await self.aclose()
                raise
            assert first is _READY
        return self

    def __await__(self) -> Generator[Any, None, AsyncStreamResponse]:
        return self._start().__await__()

    async def __aenter__(self) -> AsyncStreamResponse:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _lists(self, output: _Output[T]) -> AsyncIterator[list[T]]:
        try:
            async for chunk in self._chunks:
                yield output.feed(chunk)
            yield output.end()
        finally:
            await self.aclose()

    async def _iterate(self, output: _Output[T]) -> AsyncIterator[T]:
        async for values in self._lists(output):
            for value in values:
                yield value

    async def _collect(self, output: _Output[T], method: str) -> list[T]:
        values: list[T] = []
        async for more in self._lists(self._read_all(output, method)):
            values.extend(more)
        return values

    # --- consumption ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.iter_bytes()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Raw bytes as they arrive (not available with ``live='sse'``)."""
        return self._iterate(self._output(_Bytes()))

    def iter_text(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        """Text as it arrives; multi-byte characters split across responses are kept whole."""
        return self._iterate(self._output(_Text(encoding)))

    def iter_json(self, decode: Decode = None) -> AsyncIterator[Any]:
        """JSON messages one by one (arrays of a JSON stream are flattened)."""
        return self._iterate(self._output(_Json(decode)))

    def iter_json_batches(self, decode: Decode = None) -> AsyncIterator[list[Any]]:
        """JSON messages as the lists the server sent them in."""
        return self._iterate(self._output(_Batches(decode)))

    def iter_events(
        self, mode: EventMode = "json", *, encoding: str = "utf-8", decode: Decode = None
    ) -> AsyncIterator[StreamEvent[Any]]:
        """``StreamEvent``s with offset, up-to-date and cursor; ``mode`` picks the data type
        (``json`` by default: each event's messages as a list)."""
        return self._iterate(self._output(_Events(mode, encoding, decode)))

    async def read_bytes(self) -> bytes:
        """All bytes up to the end (up to date, or EOF); not available with ``live='sse'``."""
        pieces: list[bytes] = await self._collect(_Bytes(), "read_bytes")
        return b"".join(pieces)

    async def read_text(self, encoding: str = "utf-8") -> str:
        """All text up to the end (up to date, or EOF)."""
        return "".join(await self._collect(_Text(encoding, "read_text"), "read_text"))

    async def read_json(self, decode: Decode = None) -> list[Any]:
        """All JSON messages up to the end (up to date, or EOF), arrays flattened."""
        return await self._collect(_Json(decode, "read_json"), "read_json")

    async def read_json_batches(self, decode: Decode = None) -> list[list[Any]]:
        """All JSON messages up to the end, in the lists the server sent them in."""
        output = _Batches(decode, "read_json_batches")
        return await self._collect(output, "read_json_batches")

    # --- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        if not self._closed:
            self._closed = True
            await self._chunks.aclose()
            if self._owns_client:
                await self._client.aclose()
