"""The async twin: ``astream()`` and ``AsyncDurableStream``, same names and behaviour as
``_sync``; decisions live in ``_read``, ``_handle`` and ``_core``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import httpx

from millstream.client._core import Flow
from millstream.client._handle import HandleBase, HandleCore, Pending
from millstream.client._io import AsyncIO
from millstream.client._response import AsyncStreamResponse
from millstream.client._types import AppendResult, CloseResult, HeadResult, TimeoutLike

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
            await self.release()
            raise
        return self

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
        if data is not None:
            await self._ensure_content_type(timeout)
        result = await self._submit(self._core.close_pending(data, timeout))
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
