"""The async twin: ``astream()`` and ``AsyncDurableStream``, same names and behaviour as
``_sync``; decisions live in ``_read``, ``_handle`` and ``_core``."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from datetime import datetime
from typing import Any

import httpx

from millstream.client import _core
from millstream.client._core import RetryPolicy
from millstream.client._handle import HandleCore, Pending
from millstream.client._read import ReadSession
from millstream.client._response import AsyncStreamResponse
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

__all__ = ["AsyncDurableStream", "astream"]


def _new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=_core.DEFAULT_TIMEOUT,
        follow_redirects=True,
        verify=_core.ssl_context(),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


class _AStream:
    """What ``astream()`` returns: ``async with astream(...) as res`` or ``await astream(...)``."""

    def __init__(self, response: AsyncStreamResponse) -> None:
        self._response = response

    def __await__(self) -> Generator[Any, None, AsyncStreamResponse]:
        return self._response._start().__await__()

    async def __aenter__(self) -> AsyncStreamResponse:
        return await self._response._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._response.aclose()


def astream(
    url: str,
    *,
    offset: str | None = None,
    live: LiveMode = "auto",
    headers: HeadersLike | None = None,
    params: ParamsLike | None = None,
    on_error: OnError | None = None,
    timeout: TimeoutLike = None,
    retry: RetryPolicy | None = None,
    client: httpx.AsyncClient | None = None,
) -> _AStream:
    """Start reading ``url`` asynchronously; use as ``async with`` or ``await`` it.

    ``on_error`` may be a plain or an async function."""
    session = ReadSession(
        url,
        offset=offset,
        live=live,
        headers=headers,
        params=params,
        timeout=_core.make_timeout(timeout, _core.DEFAULT_TIMEOUT),
    )
    response = AsyncStreamResponse(
        session,
        client or _new_client(),
        owns_client=client is None,
        policy=retry or RetryPolicy(),
        on_error=on_error,
    )
    return _AStream(response)


def _iso(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class AsyncDurableStream:
    """Async handle for reading and writing one stream; constructing it makes no network call."""

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
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._core = HandleCore(
            url,
            headers=headers,
            params=params,
            content_type=content_type,
            timeout=timeout,
            retry=retry,
            batching=batching,
        )
        self._client = client or _new_client()
        self._owns_client = client is None
        self._ct_lock: asyncio.Lock | None = None
        self._sender: asyncio.Task[None] | None = None

    @classmethod
    async def create(
        cls,
        url: str,
        *,
        content_type: str = "application/octet-stream",
        ttl_seconds: int | None = None,
        expires_at: str | datetime | None = None,
        closed: bool = False,
        data: Any = None,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        batching: bool = True,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> AsyncDurableStream:
        """Create the stream (PUT), or accept an existing one with the same configuration."""
        handle = cls(
            url,
            headers=headers,
            params=params,
            content_type=content_type,
            batching=batching,
            timeout=timeout,
            retry=retry,
            client=client,
        )
        try:
            await handle._run(
                handle._core.create_flow(
                    content_type=content_type,
                    ttl_seconds=ttl_seconds,
                    expires_at=_iso(expires_at),
                    closed=closed,
                    data=data,
                    timeout=None,
                )
            )
        except BaseException:
            await handle.release()
            raise
        return handle

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        batching: bool = True,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> AsyncDurableStream:
        """A handle to an existing stream (HEAD): raises ``StreamNotFoundError`` if absent."""
        handle = cls(
            url,
            headers=headers,
            params=params,
            batching=batching,
            timeout=timeout,
            retry=retry,
            client=client,
        )
        try:
            await handle.head()
        except BaseException:
            await handle.release()
            raise
        return handle

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def content_type(self) -> str | None:
        return self._core.content_type

    async def _run(self, flow: _core.Flow[Any]) -> Any:
        return await _core.run_async(flow, self._client)

    async def head(self, *, timeout: TimeoutLike = None) -> HeadResult:
        """The stream's metadata: content type, tail offset, closed."""
        result: HeadResult = await self._run(self._core.head_flow(timeout))
        return result

    async def _ensure_content_type(self, timeout: TimeoutLike) -> None:
        if self._core.content_type is None:
            if self._ct_lock is None:
                self._ct_lock = asyncio.Lock()
            async with self._ct_lock:
                await self._run(self._core.content_type_flow(timeout))

    async def append(
        self, data: Any, *, seq: str | None = None, timeout: TimeoutLike = None
    ) -> AppendResult:
        """Append one message: a Python value for JSON streams, bytes or str for others.

        With batching (the default), appends made while a POST is in flight go out together."""
        if self._core.content_type is None:
            await self._ensure_content_type(timeout)
        return await self._submit(Pending(self._core.encode(data), seq=seq, timeout=timeout))

    def append_nowait(self, data: Any, *, seq: str | None = None) -> asyncio.Future[AppendResult]:
        """Queue an append without awaiting it; the returned future resolves with its result.
        The content type must be known (``create``/``connect``/``content_type=``)."""
        if self._core.content_type is None:
            raise RuntimeError("append_nowait needs the content type: use create() or connect()")
        return self._enqueue(Pending(self._core.encode(data), seq=seq))

    async def close(self, data: Any = None, *, timeout: TimeoutLike = None) -> CloseResult:
        """Close the stream (EOF for readers), appending ``data`` last when given."""
        body = b""
        if data is not None:
            await self._ensure_content_type(timeout)
            body = self._core.encode(data)
        result = await self._submit(Pending(body, close=True, timeout=timeout))
        return HandleCore.close_result(result)

    async def _submit(self, pending: Pending) -> AppendResult:
        if not self._core.batching:
            result: AppendResult = await self._run(self._core.post_flow([pending]))
            return result
        return await self._enqueue(pending)

    def _enqueue(self, pending: Pending) -> asyncio.Future[AppendResult]:
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        pending.waiter = future
        if self._core.queue.add(pending):
            self._sender = asyncio.create_task(self._send_batches())
        return future

    async def _send_batches(self) -> None:
        queue = self._core.queue
        while True:
            batch = queue.take()
            try:
                result = await self._run(self._core.post_flow(batch))
            except BaseException as exc:
                for p in batch:
                    if not p.waiter.done():
                        p.waiter.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    queue.sending = False
                    raise
            else:
                for p in batch:
                    if not p.waiter.done():
                        p.waiter.set_result(result)
            if not queue.finish():
                return

    async def delete(self, *, timeout: TimeoutLike = None) -> None:
        """Delete the stream and its data."""
        await self._run(self._core.delete_flow(timeout))

    def stream(
        self,
        *,
        offset: str | None = None,
        live: LiveMode = "auto",
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        on_error: OnError | None = None,
        timeout: TimeoutLike = None,
    ) -> _AStream:
        """Read this stream (see ``astream()``), sharing the handle's connection pool."""
        return astream(
            self.url,
            offset=offset,
            live=live,
            headers={**self._core.headers, **(headers or {})},
            params={**self._core.params, **(params or {})},
            on_error=on_error,
            timeout=timeout if timeout is not None else self._core.timeout,
            retry=self._core.retry,
            client=self._client,
        )

    def producer(self, producer_id: str, **options: Any) -> Any:
        """An ``AsyncIdempotentProducer`` writing to this stream (exactly-once appends)."""
        from millstream.client._producer import AsyncIdempotentProducer

        options.setdefault("content_type", self._core.content_type)
        options.setdefault("headers", self._core.headers)
        options.setdefault("retry", self._core.retry)
        options.setdefault("client", self._client)
        return AsyncIdempotentProducer(self.url, producer_id, **options)

    async def release(self) -> None:
        """Wait for queued appends, then release the handle's connections."""
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncDurableStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"AsyncDurableStream({self.url!r})"
