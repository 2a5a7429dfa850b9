"""The blocking twin: ``stream()`` and ``DurableStream``. Decisions live in ``_read``,
``_handle`` and ``_core``; this module only performs requests and waits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx

from millstream.client import _core
from millstream.client._core import RetryPolicy
from millstream.client._handle import HandleCore, Pending
from millstream.client._read import ReadSession
from millstream.client._response import StreamResponse
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

__all__ = ["DurableStream", "stream"]


def _new_client() -> httpx.Client:
    return httpx.Client(
        timeout=_core.DEFAULT_TIMEOUT, follow_redirects=True, verify=_core.ssl_context()
    )


def stream(
    url: str,
    *,
    offset: str | None = None,
    live: LiveMode = "auto",
    headers: HeadersLike | None = None,
    params: ParamsLike | None = None,
    on_error: OnError | None = None,
    timeout: TimeoutLike = None,
    retry: RetryPolicy | None = None,
    client: httpx.Client | None = None,
) -> StreamResponse:
    """Start reading ``url`` from ``offset`` (default: the beginning).

    The first request happens here, so a missing stream raises ``StreamNotFoundError`` at once.
    ``headers``/``params`` values may be callables, called before every request.
    """
    session = ReadSession(
        url,
        offset=offset,
        live=live,
        headers=headers,
        params=params,
        timeout=_core.make_timeout(timeout, _core.DEFAULT_TIMEOUT),
    )
    return StreamResponse(
        session,
        client or _new_client(),
        owns_client=client is None,
        policy=retry or RetryPolicy(),
        on_error=on_error,
    )


def _iso(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class DurableStream:
    """A handle for reading and writing one stream. Constructing it makes no network call;
    the stream's content type is learned on first use when not given."""

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
        client: httpx.Client | None = None,
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
        self._lock = threading.Lock()
        self._ct_lock = threading.Lock()

    @classmethod
    def create(
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
        client: httpx.Client | None = None,
    ) -> DurableStream:
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
            handle._run(
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
            handle.release()
            raise
        return handle

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
        client: httpx.Client | None = None,
    ) -> DurableStream:
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
            handle.head()
        except BaseException:
            handle.release()
            raise
        return handle

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def content_type(self) -> str | None:
        return self._core.content_type

    def _run(self, flow: _core.Flow[Any]) -> Any:
        return _core.run_sync(flow, self._client)

    def head(self, *, timeout: TimeoutLike = None) -> HeadResult:
        """The stream's metadata: content type, tail offset, closed."""
        result: HeadResult = self._run(self._core.head_flow(timeout))
        return result

    def _ensure_content_type(self, timeout: TimeoutLike) -> None:
        if self._core.content_type is None:
            with self._ct_lock:
                self._run(self._core.content_type_flow(timeout))

    def append(
        self, data: Any, *, seq: str | None = None, timeout: TimeoutLike = None
    ) -> AppendResult:
        """Append one message: a Python value for JSON streams, bytes or str for others.

        With batching (the default), appends made from other threads while a POST is in flight
        go out together in the next POST."""
        self._ensure_content_type(timeout)
        return self._submit(Pending(self._core.encode(data), seq=seq, timeout=timeout))

    def close(self, data: Any = None, *, timeout: TimeoutLike = None) -> CloseResult:
        """Close the stream (EOF for readers), appending ``data`` last when given."""
        body = b""
        if data is not None:
            self._ensure_content_type(timeout)
            body = self._core.encode(data)
        result = self._submit(Pending(body, close=True, timeout=timeout))
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

    def stream(
        self,
        *,
        offset: str | None = None,
        live: LiveMode = "auto",
        headers: HeadersLike | None = None,
        params: ParamsLike | None = None,
        on_error: OnError | None = None,
        timeout: TimeoutLike = None,
    ) -> StreamResponse:
        """Read this stream (see ``stream()``), sharing the handle's connection pool."""
        return stream(
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
        """An ``IdempotentProducer`` writing to this stream (exactly-once appends)."""
        from millstream.client._producer import IdempotentProducer

        options.setdefault("content_type", self._core.content_type)
        options.setdefault("headers", self._core.headers)
        options.setdefault("retry", self._core.retry)
        return IdempotentProducer(self.url, producer_id, **options)

    def release(self) -> None:
        """Release the handle's connections (the stream itself is untouched)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> DurableStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DurableStream({self.url!r})"
