"""I/O-free core of ``DurableStream`` / ``AsyncDurableStream``: each operation is a flow
(see ``_core``) and the append batch queue is plain data; the twins run them. ``HandleBase``
holds what the twins share beyond that: construction, ``create``/``connect``, ``stream()``.

Batching: while one POST is in flight, later appends wait in ``BatchQueue``; when it returns,
everything waiting goes out as one POST (a JSON array for JSON streams, bytes back to back
otherwise), in call order. Appends with ``seq=`` and ``close_stream()`` travel alone, because
``Stream-Seq`` and ``Stream-Closed`` belong to a whole request; appends with another
``content_type=`` than the one before them start a new batch. Every caller in a batch gets
that batch's ``AppendResult`` or its error: the server applies a POST entirely or not at all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
import orjson

from millstream.client import _core
from millstream.client._core import Flow, Request, RetryPolicy
from millstream.client._errors import DurableStreamError
from millstream.client._response import _ResponseBase
from millstream.client._types import (
    AppendResult,
    CloseResult,
    HeadersLike,
    HeadResult,
    LiveMode,
    OnError,
    ParamsLike,
    TimeoutLike,
)

__all__ = ["BatchQueue", "HandleBase", "HandleCore", "Pending"]

ClientT = TypeVar("ClientT", bound=httpx.Client | httpx.AsyncClient)
ReadT = TypeVar("ReadT", bound=_ResponseBase[Any])
OpenedT = TypeVar("OpenedT")

DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(slots=True, eq=False)
class Pending:
    """One waiting append (or close): its encoded body and where its outcome goes."""

    body: bytes
    seq: str | None = None
    close: bool = False
    timeout: TimeoutLike = None
    content_type: str | None = None  # None: the stream's
    waiter: Any = None  # a Future or threading.Event, chosen by the twin
    result: AppendResult | None = None
    error: BaseException | None = None
    lead: bool = False

    @property
    def alone(self) -> bool:
        return self.seq is not None or self.close


@dataclass(slots=True)
class BatchQueue:
    """Appends waiting for the in-flight POST; ``sending`` is True while a sender runs."""

    max_bytes: int = DEFAULT_MAX_BATCH_BYTES
    items: deque[Pending] = field(default_factory=deque)
    sending: bool = False

    def add(self, pending: Pending) -> bool:
        """Queue ``pending``; True when nothing is sending and the caller must start."""
        self.items.append(pending)
        if self.sending:
            return False
        self.sending = True
        return True

    def take(self) -> list[Pending]:
        """The next batch: one ``alone`` item, or a run of plain appends up to ``max_bytes``."""
        items = self.items
        first = items.popleft()
        batch = [first]
        if first.alone:
            return batch
        size = len(first.body)
        while (
            items
            and not items[0].alone
            and items[0].content_type == first.content_type
            and size + len(items[0].body) <= self.max_bytes
        ):
            nxt = items.popleft()
            size += len(nxt.body)
            batch.append(nxt)
        return batch

    def finish(self) -> bool:
        """A POST returned; True when more is waiting (the sender carries on)."""
        if self.items:
            return True
        self.sending = False
        return False


class HandleCore:
    """Stream URL, options and learned content type; builds every operation's flow."""

    def __init__(
        self,
        url: str,
        headers: HeadersLike | None,
        params: ParamsLike | None,
        content_type: str | None,
        timeout: TimeoutLike,
        retry: RetryPolicy | None,
        batching: bool,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        on_error: OnError | None = None,
    ) -> None:
        self.url = url
        self.headers: dict[str, Any] = dict(headers or {})
        self.params: dict[str, Any] = dict(params or {})
        self.content_type = content_type
        self.timeout_arg = timeout  # as given: a read's own timeout only when the caller set one
        self.timeout = _core.make_timeout(timeout, _core.DEFAULT_TIMEOUT)
        self.on_error = on_error
        self.retry = retry or RetryPolicy()
        self.batching = batching
        self.queue = BatchQueue(max_bytes=max_batch_bytes)

    @property
    def json_mode(self) -> bool:
        return _core.is_json(self.content_type)

    def request(
        self,
        method: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        timeout: TimeoutLike = None,
        idempotent: bool = True,
    ) -> Request:
        return Request(
            method,
            self.url,
            headers=_core.merged(self.headers, headers),
            params=dict(self.params),
            content=content,
            timeout=_core.make_timeout(timeout, self.timeout),
            idempotent=idempotent,
        )

    def _learn(self, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type")
        if content_type:
            self.content_type = content_type

    # --- flows -------------------------------------------------------------------------------

    def create_flow(
        self,
        *,
        content_type: str | None,
        ttl_seconds: int | None,
        expires_at: str | None,
        closed: bool,
        data: Any,
        body: Any,
        timeout: TimeoutLike,
    ) -> Flow[None]:
        """PUT. ``data`` is one first message (as ``append`` takes it); ``body`` is the raw
        request body, as the official client sends it (a JSON array becomes several messages;
        a Python value that is not str/bytes is serialized to JSON first)."""
        if ttl_seconds is not None and expires_at is not None:
            raise ValueError("pass ttl_seconds or expires_at, not both")
        if ttl_seconds is not None and (not isinstance(ttl_seconds, int) or ttl_seconds < 0):
            raise ValueError("ttl_seconds must be a non-negative int")
        content_type = content_type or self.content_type or "application/octet-stream"
        headers = {"Content-Type": content_type}
        if ttl_seconds is not None:
            headers[_core.TTL] = str(ttl_seconds)
        if expires_at is not None:
            headers[_core.EXPIRES_AT] = expires_at
        if closed:
            headers[_core.CLOSED] = "true"
        if data is not None and body is not None:
            raise ValueError("pass data= (one message) or body= (the raw body), not both")
        content: bytes | None = None
        json_mode = _core.is_json(content_type)
        if data is not None:
            content = _core.encode_item(data, json_mode)
            if json_mode:
                content = _core.batch_body([content], True)
        elif isinstance(body, str):
            content = body.encode()
        elif isinstance(body, bytes | bytearray | memoryview):
            content = bytes(body)
        elif body is not None:
            content = orjson.dumps(body)
        request = self.request("PUT", headers=headers, content=content, timeout=timeout)
        response = yield from _core.send_flow(request, self.retry)
        _core.check(response, "create")
        self.content_type = response.headers.get("content-type") or content_type

    def head_flow(self, timeout: TimeoutLike = None) -> Flow[HeadResult]:
        request = self.request("HEAD", timeout=timeout)
        response = _core.check((yield from _core.send_flow(request, self.retry)), "head")
        self._learn(response)
        h = response.headers
        ttl = h.get(_core.TTL)
        return HeadResult(
            exists=True,
            content_type=h.get("content-type"),
            offset=h.get(_core.NEXT_OFFSET),
            etag=h.get("etag"),
            cache_control=h.get("cache-control"),
            stream_closed=_core.is_true(h.get(_core.CLOSED)),
            ttl_seconds=int(ttl) if ttl and ttl.isdigit() else None,
            expires_at=h.get(_core.EXPIRES_AT),
        )

    def content_type_flow(self, timeout: TimeoutLike = None) -> Flow[str]:
        """The stream's content type, asking the server (HEAD) the first time only."""
        if self.content_type is None:
            yield from self.head_flow(timeout)
        return self.content_type or "application/octet-stream"

    def encode(self, data: Any, content_type: str | None = None) -> bytes:
        return _core.encode_item(data, _core.is_json(content_type or self.content_type))

    def pending(
        self, data: Any, seq: str | None, timeout: TimeoutLike, content_type: str | None
    ) -> Pending:
        """One append (content type known)."""
        body = self.encode(data, content_type)
        return Pending(body, seq=seq, timeout=timeout, content_type=content_type)

    def close_pending(self, data: Any, timeout: TimeoutLike, content_type: str | None) -> Pending:
        """A close, carrying ``data`` as the last append when given (content type known)."""
        body = self.encode(data, content_type) if data is not None else b""
        return Pending(body, close=True, timeout=timeout, content_type=content_type)

    def post_flow(self, batch: list[Pending]) -> Flow[AppendResult]:
        """One POST carrying ``batch`` (several plain appends, or one seq/close item)."""
        first = batch[0]
        headers: dict[str, str] = {}
        if first.seq is not None:
            headers[_core.SEQ] = first.seq
        content_type = first.content_type or self.content_type or "application/octet-stream"
        json_mode = _core.is_json(content_type)
        body: bytes | None
        if first.close:
            headers[_core.CLOSED] = "true"
            body = _core.batch_body([first.body], json_mode) if first.body else None
        else:
            body = _core.batch_body([p.body for p in batch], json_mode)
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.request(
            "POST",
            headers=headers,
            content=body,
            timeout=first.timeout,
            # A close without a body is idempotent (PROTOCOL.md 5.2); appends are not.
            idempotent=first.close and body is None,
        )
        response = yield from _core.send_flow(request, self.retry)
        _core.check(response, "close" if first.close else "append")
        next_offset = response.headers.get(_core.NEXT_OFFSET)
        if next_offset is None:
            raise DurableStreamError(
                "Append response has no Stream-Next-Offset header",
                code="PROTOCOL",
                url=self.url,
                hint="the URL does not look like a Durable Streams server",
            )
        return AppendResult(next_offset, _core.is_true(response.headers.get(_core.CLOSED)))

    def delete_flow(self, timeout: TimeoutLike = None) -> Flow[None]:
        request = self.request("DELETE", timeout=timeout)
        _core.check((yield from _core.send_flow(request, self.retry)), "delete")

    @staticmethod
    def close_result(result: AppendResult) -> CloseResult:
        return CloseResult(result.next_offset)


def _iso(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class HandleBase(Generic[ClientT, ReadT, OpenedT]):
    """What ``DurableStream`` and ``AsyncDurableStream`` share. A twin supplies the client
    (``ReadT._new_client``), ``_open_with`` (run a flow that opens the handle, returning the
    handle or an awaitable of it) and the operations that perform I/O."""

    _response_class: type[ReadT]

    def __init__(
        self,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        content_type: str | None = None,
        batching: bool = True,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: ClientT | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """A handle to ``url``; no network call. ``client`` (an httpx client you own) is
        shared and never closed here; without it the handle makes its own, released by
        ``close()``/``aclose()``. ``on_error`` applies to the handle's reads."""
        self._core = HandleCore(
            url, headers, params, content_type, timeout, retry, batching, on_error=on_error
        )
        self._client: ClientT = client or self._response_class._new_client()
        self._owns_client = client is None
        self._init_io()

    def _init_io(self) -> None:
        """Locks and tasks of the twin."""

    def _open_with(self, flow: Flow[Any]) -> OpenedT:
        raise NotImplementedError

    @classmethod
    def create(
        cls,
        url: str,
        *,
        content_type: str | None = "application/octet-stream",
        ttl_seconds: int | None = None,
        expires_at: str | datetime | None = None,
        closed: bool = False,
        data: Any = None,
        body: Any = None,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        batching: bool = True,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: ClientT | None = None,
        on_error: OnError | None = None,
    ) -> OpenedT:
        """Create the stream (PUT), or accept an existing one with the same configuration.
        ``data`` is a first message; ``body`` the raw initial body (the official name)."""
        handle = cls(
            url,
            headers=headers,
            params=params,
            content_type=content_type,
            batching=batching,
            timeout=timeout,
            retry=retry,
            client=client,
            on_error=on_error,
        )
        flow = handle._core.create_flow(
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            expires_at=_iso(expires_at),
            closed=closed,
            data=data,
            body=body,
            timeout=None,
        )
        return handle._open_with(flow)

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        batching: bool = True,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: ClientT | None = None,
        on_error: OnError | None = None,
    ) -> OpenedT:
        """A handle to an existing stream (HEAD): raises ``StreamNotFoundError`` if absent."""
        handle = cls(
            url,
            headers=headers,
            params=params,
            batching=batching,
            timeout=timeout,
            retry=retry,
            client=client,
            on_error=on_error,
        )
        return handle._open_with(handle._core.head_flow(None))

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def content_type(self) -> str | None:
        return self._core.content_type

    def stream(
        self,
        *,
        offset: str | None = None,
        live: LiveMode = True,
        cursor: str | None = None,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        on_error: OnError | None = None,
        timeout: TimeoutLike = None,
    ) -> ReadT:
        """Read this stream (see ``stream()``/``astream()``), sharing the handle's connections."""
        return self._response_class._open(
            self.url,
            offset=offset,
            live=live,
            cursor=cursor,
            headers=_core.merged(self._core.headers, headers),
            params=_core.merged(self._core.params, params),
            on_error=on_error if on_error is not None else self._core.on_error,
            timeout=timeout if timeout is not None else self._core.timeout_arg,
            retry=self._core.retry,
            client=self._client,
        )

    def producer(self, producer_id: str, **options: Any) -> Any:
        """An idempotent producer of this twin writing to this stream (exactly-once appends)."""
        from millstream.client._producer import AsyncIdempotentProducer, IdempotentProducer

        options.setdefault("content_type", self._core.content_type)
        options.setdefault("headers", self._core.headers)
        options.setdefault("retry", self._core.retry)
        if isinstance(self._client, httpx.Client):
            return IdempotentProducer.blocking(self.url, producer_id, **options)
        options.setdefault("client", self._client)
        return AsyncIdempotentProducer(self.url, producer_id, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
