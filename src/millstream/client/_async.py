"""The async twin: ``astream()`` and ``AsyncDurableStream``, same names and behaviour as
``_sync``; decisions live in ``_read``, ``_handle`` and ``_core``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import httpx

from millstream.client._core import Flow
from millstream.client._handle import HandleBase, HandleCore, Pending, _iso
from millstream.client._io import AsyncIO
from millstream.client._response import AsyncStreamResponse
from millstream.client._types import (
    AppendResult,
    CloseResult,
    HeadersLike,
    HeadResult,
    ParamsLike,
    TimeoutLike,
)

__all__ = ["AsyncDurableStream", "astream"]

astream = AsyncStreamResponse._open


class AsyncDurableStream(
    HandleBase[httpx.AsyncClient, AsyncStreamResponse, Awaitable["AsyncDurableStream"]]
):
    """Async handle for reading and writing one stream; constructing it makes no network call.
    ``create`` and ``connect`` are awaited."""

    _response_class = AsyncStreamResponse

    def _init_io(self) -> None:
        self._ct_lock: asyncio.Lock | None = None
        self._sender: asyncio.Task[None] | None = None

    async def _run(self, flow: Flow[Any]) -> Any:
        return await AsyncIO(self._client).run(flow)

    async def _open_with(self, flow: Flow[Any]) -> AsyncDurableStream:
        try:
            await self._run(flow)
        except BaseException:
            await self.aclose()
            raise
        return self

    @classmethod
    async def head_static(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: TimeoutLike = None,
    ) -> HeadResult:
        """The stream's metadata without keeping a handle."""
        async with cls(
            url, headers=headers, params=params, client=client, timeout=timeout
        ) as handle:
            return await handle.head()

    @classmethod
    async def delete_static(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: TimeoutLike = None,
    ) -> None:
        """Delete the stream without keeping a handle."""
        async with cls(
            url, headers=headers, params=params, client=client, timeout=timeout
        ) as handle:
            await handle.delete()

    async def head(self, *, timeout: TimeoutLike = None) -> HeadResult:
        """The stream's metadata: content type, tail offset, closed."""
        result: HeadResult = await self._run(self._core.head_flow(timeout))
        return result

    async def create_stream(
        self,
        *,
        content_type: str | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | datetime | None = None,
        body: Any = None,
        closed: bool = False,
        data: Any = None,
        timeout: TimeoutLike = None,
    ) -> None:
        """Create this handle's stream (PUT); see ``create``."""
        flow = self._core.create_flow(
            content_type=content_type,
            ttl_seconds=ttl_seconds,
            expires_at=_iso(expires_at),
            closed=closed,
            data=data,
            body=body,
            timeout=timeout,
        )
        await self._run(flow)

    async def _ensure_content_type(self, timeout: TimeoutLike) -> None:
        if self._core.content_type is None:
            if self._ct_lock is None:
                self._ct_lock = asyncio.Lock()
            async with self._ct_lock:
                await self._run(self._core.content_type_flow(timeout))

    async def append(
        self,
        data: Any,
        *,
        seq: str | None = None,
        content_type: str | None = None,
        timeout: TimeoutLike = None,
    ) -> AppendResult:
        """Append one message: a Python value or JSON text (str/bytes) for JSON streams, bytes
        or str for others.

        With batching (the default), appends made while a POST is in flight go out together."""
        if content_type is None:
            await self._ensure_content_type(timeout)
        return await self._submit(self._core.pending(data, seq, timeout, content_type))

    def append_nowait(self, data: Any, *, seq: str | None = None) -> asyncio.Future[AppendResult]:
        """Queue an append without awaiting it; the returned future resolves with its result.
        The content type must be known (``create``/``connect``/``content_type=``)."""
        if self._core.content_type is None:
            raise RuntimeError("append_nowait needs the content type: use create() or connect()")
        return self._enqueue(self._core.pending(data, seq, None, None))

    async def close_stream(
        self, data: Any = None, *, content_type: str | None = None, timeout: TimeoutLike = None
    ) -> CloseResult:
        """Close the stream for good (EOF for readers), appending ``data`` last when given.

        Not to be confused with ``aclose()``/``close()``, which only release connections."""
        if data is not None and content_type is None:
            await self._ensure_content_type(timeout)
        result = await self._submit(self._core.close_pending(data, timeout, content_type))
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

    async def aclose(self) -> None:
        """Wait for queued appends, then release the handle's connections; the stream itself
        is untouched (to end it, ``close_stream()``). A ``client=`` passed in stays open."""
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])
        if self._owns_client:
            await self._client.aclose()

    close = release = aclose

    async def __aenter__(self) -> AsyncDurableStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
