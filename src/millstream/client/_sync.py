"""The blocking twin: ``stream()`` and ``DurableStream``. Decisions live in ``_read``,
``_handle`` and ``_core``; this module only performs requests and waits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx

from millstream.client._core import Flow
from millstream.client._handle import HandleBase, HandleCore, Pending, _iso
from millstream.client._io import SyncIO
from millstream.client._response import StreamResponse
from millstream.client._types import (
    AppendResult,
    CloseResult,
    HeadersLike,
    HeadResult,
    ParamsLike,
    TimeoutLike,
)

__all__ = ["DurableStream", "stream"]

stream = StreamResponse._open


class DurableStream(HandleBase[httpx.Client, StreamResponse, "DurableStream"]):
    """A handle for reading and writing one stream. Constructing it makes no network call;
    the stream's content type is learned on first use when not given."""

    _response_class = StreamResponse

    def _init_io(self) -> None:
        self._lock = threading.Lock()
        self._ct_lock = threading.Lock()

    def _run(self, flow: Flow[Any]) -> Any:
        return SyncIO(self._client).run(flow)

    def _open_with(self, flow: Flow[Any]) -> DurableStream:
        try:
            self._run(flow)
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def head_static(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        client: httpx.Client | None = None,
        timeout: TimeoutLike = None,
    ) -> HeadResult:
        """The stream's metadata without keeping a handle."""
        with cls(url, headers=headers, params=params, client=client, timeout=timeout) as handle:
            return handle.head()

    @classmethod
    def delete_static(
        cls,
        url: str,
        *,
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        client: httpx.Client | None = None,
        timeout: TimeoutLike = None,
    ) -> None:
        """Delete the stream without keeping a handle."""
        with cls(url, headers=headers, params=params, client=client, timeout=timeout) as handle:
            handle.delete()

    def head(self, *, timeout: TimeoutLike = None) -> HeadResult:
        """The stream's metadata: content type, tail offset, closed."""
        result: HeadResult = self._run(self._core.head_flow(timeout))
        return result

    def create_stream(
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
        self._run(flow)

    def _ensure_content_type(self, timeout: TimeoutLike) -> None:
        if self._core.content_type is None:
            with self._ct_lock:
                self._run(self._core.content_type_flow(timeout))

    def append(
        self,
        data: Any,
        *,
        seq: str | None = None,
        content_type: str | None = None,
        timeout: TimeoutLike = None,
    ) -> AppendResult:
        """Append one message: a Python value or JSON text (str/bytes) for JSON streams, bytes
        or str for others.

        With batching (the default), appends made from other threads while a POST is in flight
        go out together in the next POST."""
        if content_type is None:
            self._ensure_content_type(timeout)
        return self._submit(self._core.pending(data, seq, timeout, content_type))

    def close_stream(
        self, data: Any = None, *, content_type: str | None = None, timeout: TimeoutLike = None
    ) -> CloseResult:
        """Close the stream for good (EOF for readers), appending ``data`` last when given.

        Not to be confused with ``close()``, which only releases this handle's connections."""
        if data is not None and content_type is None:
            self._ensure_content_type(timeout)
        result = self._submit(self._core.close_pending(data, timeout, content_type))
        return HandleCore.close_result(result)

    def _submit(self, pending: Pending) -> AppendResult:
        if not self._core.batching:
            result: AppendResult = self._run(self._core.post_flow([pending]))
            return result
        queue = self._core.queue
        pending.waiter = threading.Event()
        with self._lock:
            lead = queue.add(pending)
        while not lead:
            pending.waiter.wait()
            if not pending.lead:
                break
            lead, pending.lead = True, False
        if lead:
            # This thread sends the next batch (its own append is first in it), then hands
            # the sender role to the oldest waiting append, if any.
            with self._lock:
                batch = queue.take()
            try:
                result = self._run(self._core.post_flow(batch))
                for p in batch:
                    p.result = result
            except BaseException as exc:
                for p in batch:
                    p.error = exc
            for p in batch:
                if p is not pending:
                    p.waiter.set()
            with self._lock:
                if queue.finish():
                    nxt = queue.items[0]
                    nxt.lead = True
                    nxt.waiter.set()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def delete(self, *, timeout: TimeoutLike = None) -> None:
        """Delete the stream and its data."""
        self._run(self._core.delete_flow(timeout))

    def close(self) -> None:
        """Release the handle's connections; the stream itself is untouched (to end the
        stream, ``close_stream()``). A client passed in as ``client=`` stays open."""
        if self._owns_client:
            self._client.close()

    release = close

    def __enter__(self) -> DurableStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
