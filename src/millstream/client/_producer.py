"""Idempotent producers: exactly-once appends across retries (PROTOCOL.md section 5.2.1).

Every POST carries ``Producer-Id``, ``Producer-Epoch`` and ``Producer-Seq`` (one seq per
request, from 0 in each epoch). The server keeps the last accepted seq per producer, so a
retried request is answered ``204`` (duplicate) instead of being appended twice; that makes
every failure retryable, including a connection cut after the server applied the batch.

- Batching and pipelining: ``append`` is fire-and-forget; values queue while up to
  ``max_in_flight`` requests are outstanding and leave together when a slot frees. A batch
  leaves after ``linger_ms`` (0: at the end of the event-loop iteration that queued it), or at
  once when it reaches ``max_batch_bytes`` or ``max_batch_items``.
- Gap recovery: requests on different connections may arrive out of order; a ``409`` with
  ``Producer-Expected-Seq`` below ours means earlier seqs are still travelling, so we wait for
  them to finish and resend. If one of them failed, the gap cannot close: ``SequenceGapError``.
- Epochs: ``403`` means a newer epoch owns the id. With ``auto_claim=True`` the producer takes
  epoch ``server + 1`` (its first request is sent alone until the epoch is settled, so nothing
  pipelined is lost); later fencing raises ``StaleEpochError``: a zombie must not steal back.

``AsyncIdempotentProducer`` is the implementation; ``IdempotentProducer`` runs one on a private
event-loop thread so blocking code gets the same behaviour without a second copy of it. The
official client's ``IdempotentProducer`` is the asyncio one: constructed inside a running event
loop (or given an ``httpx.AsyncClient``), ``IdempotentProducer(...)`` returns an
``AsyncIdempotentProducer``, so code written for it runs unchanged.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from millstream import _httppool
from millstream.client import _core
from millstream.client._core import Request, RetryPolicy
from millstream.client._errors import (
    DurableStreamError,
    InvalidArgumentError,
    SequenceGapError,
    StaleEpochError,
    StreamClosedError,
)
from millstream.client._io import AsyncIO
from millstream.client._types import HeadersLike, IdempotentAppendResult, TimeoutLike

__all__ = ["AsyncIdempotentProducer", "IdempotentProducer"]

T = TypeVar("T")
_Item = tuple[Any, "asyncio.Future[IdempotentAppendResult]"]


class AsyncIdempotentProducer:
    """Fire-and-forget exactly-once appends to one stream from one logical producer."""

    def __init__(
        self,
        url: str,
        producer_id: str,
        *,
        epoch: int = 0,
        auto_claim: bool = False,
        max_in_flight: int = 5,
        max_batch_bytes: int = 1024 * 1024,
        max_batch_items: int | None = None,
        linger_ms: float = 0,
        content_type: str | None = None,
        headers: HeadersLike | None = None,
        timeout: TimeoutLike = None,
        retry: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        _check_limits(
            producer_id, epoch, max_in_flight, max_batch_bytes, max_batch_items, linger_ms
        )
        self.url = url
        self.producer_id = producer_id
        self._epoch = epoch
        self._next_seq = 0
        self._auto_claim = auto_claim
        self._epoch_settled = not auto_claim
        self._max_in_flight = max_in_flight
        self._max_batch_bytes = max_batch_bytes
        self._max_batch_items = max_batch_items
        self._linger = linger_ms / 1000
        self._content_type = content_type
        self._headers = dict(headers or {})
        self._timeout = _core.make_timeout(timeout, _core.DEFAULT_TIMEOUT)
        # Safe to retry anything: the server deduplicates by (id, epoch, seq).
        self._retry = retry or RetryPolicy()
        self._client = client or _httppool.async_client(
            timeout=self._timeout, verify=_core.ssl_context()
        )
        self._owns_client = client is None
        self._on_error = on_error
        self._pending: list[_Item] = []
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._done: dict[tuple[int, int], asyncio.Future[None]] = {}
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._pending_size = 0
        self._closed = False
        self._stream_closed: IdempotentAppendResult | None = None
        self._failures: list[BaseException] = []

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    def append(self, data: Any) -> asyncio.Future[IdempotentAppendResult]:
        """Queue ``data`` (a Python value for JSON streams, bytes/str otherwise) and return at
        once; the future resolves when its batch is acknowledged. ``flush()`` waits for all."""
        if self._closed:
            raise DurableStreamError("Producer is closed", code="PRODUCER_CLOSED")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IdempotentAppendResult] = loop.create_future()
        future.add_done_callback(_retrieve)
        self._pending.append((data, future))
        self._pending_size += _size(data)
        full = self._pending_size >= self._max_batch_bytes or (
            self._max_batch_items is not None and len(self._pending) >= self._max_batch_items
        )
        if full and self._timer is not None:
            self._timer.cancel()
            self._timer, self._scheduled = None, False
        if not self._scheduled:
            # Let every append of this loop iteration (or of linger_ms) join the same batch.
            self._scheduled = True
            if self._linger > 0 and not full:
                self._timer = loop.call_later(self._linger, self._pump)
            else:
                loop.call_soon(self._pump)
        return future

    def _pump(self) -> None:
        self._scheduled = False
        self._timer = None
        while self._pending and len(self._in_flight) < self._max_in_flight:
            if not self._epoch_settled and self._in_flight:
                return
            batch = self._take()
            seq = self._next_seq
            self._next_seq += 1
            key = (self._epoch, seq)
            self._done[key] = asyncio.get_running_loop().create_future()
            self._done[key].add_done_callback(_retrieve)
            task = asyncio.create_task(self._send(batch, seq))
            self._in_flight[seq] = task
            task.add_done_callback(functools.partial(self._finished, seq))

    def _finished(self, seq: int, _task: object = None) -> None:
        self._in_flight.pop(seq, None)
        if self._pending:
            self._pump()

    def _take(self) -> list[_Item]:
        size, count = 0, 0
        limit = self._max_batch_items or len(self._pending)
        for data, _ in self._pending:
            size += _size(data)
            count += 1
            if size >= self._max_batch_bytes or count >= limit:
                break
        batch, self._pending = self._pending[:count], self._pending[count:]
        self._pending_size -= size
        return batch

    async def _content_type_now(self) -> str:
        if self._content_type is None:
            request = Request("HEAD", self.url, headers=self._headers, timeout=self._timeout)
            response = await AsyncIO(self._client).run(_core.send_flow(request, self._retry))
            _core.check(response, "head")
            self._content_type = response.headers.get("content-type") or "application/octet-stream"
        return self._content_type

    async def _send(self, batch: list[_Item], seq: int) -> None:
        epoch = self._epoch
        try:
            json_mode = _core.is_json(await self._content_type_now())
            body = _core.batch_body([_core.encode_item(d, json_mode) for d, _ in batch], json_mode)
            result = await self._post(body, epoch, seq)
        except BaseException as exc:
            self._complete(epoch, seq, exc)
            self._failures.append(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if self._on_error is not None and not isinstance(exc, asyncio.CancelledError):
                self._on_error(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._epoch_settled = True
        self._complete(self._epoch, seq if epoch == self._epoch else 0, None)
        for _, future in batch:
            if not future.done():
                future.set_result(result)

    def _complete(self, epoch: int, seq: int, error: BaseException | None) -> None:
        future = self._done.setdefault((epoch, seq), asyncio.get_running_loop().create_future())
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def _post(self, body: bytes, epoch: int, seq: int) -> IdempotentAppendResult:
        gap_retried = False
        while True:
            headers = {
                **self._headers,
                "Content-Type": self._content_type or "application/octet-stream",
                _core.PRODUCER_ID: self.producer_id,
                _core.PRODUCER_EPOCH: str(epoch),
                _core.PRODUCER_SEQ: str(seq),
            }
            request = Request(
                "POST", self.url, headers=headers, content=body, timeout=self._timeout
            )
            response = await AsyncIO(self._client).run(_core.send_flow(request, self._retry))
            status = response.status_code
            if status in (200, 204):
                return IdempotentAppendResult(
                    response.headers.get(_core.NEXT_OFFSET, ""), duplicate=status == 204
                )
            if status == 403 and _core.PRODUCER_EPOCH in response.headers:
                server_epoch = int(response.headers[_core.PRODUCER_EPOCH])
                if self._auto_claim and not self._epoch_settled and seq == 0:
                    # Claim the id: the first request goes alone, so nothing else is affected.
                    epoch = self._epoch = server_epoch + 1
                    continue
                raise StaleEpochError(server_epoch, url=self.url)
            if status == 409 and _core.PRODUCER_EXPECTED_SEQ in response.headers:
                if _core.is_true(response.headers.get(_core.CLOSED)):
                    raise StreamClosedError(url=self.url)
                expected = int(response.headers[_core.PRODUCER_EXPECTED_SEQ])
                if expected >= seq or gap_retried:
                    raise SequenceGapError(expected, seq, url=self.url)
                # Earlier requests are still on their way: wait for them, then resend.
                for earlier in range(expected, seq):
                    waiter = self._done.get((epoch, earlier))
                    if waiter is None:
                        raise SequenceGapError(expected, seq, url=self.url)
                    try:
                        await asyncio.shield(waiter)
                    except Exception as exc:
                        raise SequenceGapError(expected, seq, url=self.url) from exc
                gap_retried = True
                continue
            _core.check(response, "append")
            raise DurableStreamError(
                f"Unexpected status {status} to a producer append", status=status, url=self.url
            )

    async def flush(self) -> None:
        """Send everything queued and wait until it is acknowledged; raise the first error
        any batch met since the last flush."""
        while self._pending or self._in_flight:
            if self._pending and len(self._in_flight) < self._max_in_flight:
                self._pump()
            tasks = list(self._in_flight.values())
            if tasks:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            elif self._pending:
                await asyncio.sleep(0)
        if self._failures:
            first, self._failures = self._failures[0], []
            raise first

    async def restart(self) -> None:
        """Flush, then start a new session: epoch + 1, seq back to 0."""
        await self.flush()
        self._epoch += 1
        self._next_seq = 0

    async def close_stream(
        self, data: Any = None, *, seq: int | None = None
    ) -> IdempotentAppendResult:
        """Flush, then close the stream (atomically with ``data`` when given), idempotently:
        repeating it with the same ``seq`` is answered as a duplicate."""
        if self._stream_closed is not None:
            return IdempotentAppendResult(self._stream_closed.offset, duplicate=True)
        await self.flush()
        body = b""
        if data is not None:
            json_mode = _core.is_json(await self._content_type_now())
            body = _core.batch_body([_core.encode_item(data, json_mode)], json_mode)
        if seq is None:
            seq = self._next_seq
            self._next_seq += 1
        headers = {
            **self._headers,
            _core.CLOSED: "true",
            _core.PRODUCER_ID: self.producer_id,
            _core.PRODUCER_EPOCH: str(self._epoch),
            _core.PRODUCER_SEQ: str(seq),
        }
        if body:
            headers["Content-Type"] = self._content_type or "application/octet-stream"
        request = Request(
            "POST", self.url, headers=headers, content=body or None, timeout=self._timeout
        )
        response = await AsyncIO(self._client).run(_core.send_flow(request, self._retry))
        _core.check(response, "close")
        self._stream_closed = IdempotentAppendResult(
            response.headers.get(_core.NEXT_OFFSET, ""), duplicate=response.status_code == 204
        )
        return self._stream_closed

    async def close(self) -> None:
        """Flush what is queued, refuse further appends, release connections."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.flush()
        finally:
            if self._owns_client:
                await self._client.aclose()

    async def __aenter__(self) -> AsyncIdempotentProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _check_limits(
    producer_id: str,
    epoch: int,
    max_in_flight: int,
    max_batch_bytes: int,
    max_batch_items: int | None,
    linger_ms: float,
) -> None:
    """The official client's limits, as ``InvalidArgumentError`` (a ``ValueError``)."""
    if not producer_id:
        raise InvalidArgumentError("producer_id", "must be a non-empty string")
    if epoch < 0:
        raise InvalidArgumentError("epoch", "must be >= 0")
    if max_in_flight < 1:
        raise InvalidArgumentError("max_in_flight", "must be > 0")
    if max_batch_bytes <= 0:
        raise InvalidArgumentError("max_batch_bytes", "must be > 0")
    if max_batch_items is not None and max_batch_items <= 0:
        raise InvalidArgumentError("max_batch_items", "must be > 0")
    if linger_ms < 0:
        raise InvalidArgumentError("linger_ms", "must be >= 0")


def _size(data: Any) -> int:
    """A queued value's size for batching limits (Python values count a nominal 64 bytes)."""
    return len(data) if isinstance(data, bytes | str) else 64


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Fire-and-forget futures: mark errors as seen; flush() and on_error report them.
    if not future.cancelled():
        future.exception()


def _copy_outcome(source: asyncio.Future[T], target: concurrent.futures.Future[T]) -> None:
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _in_async_code(options: dict[str, Any]) -> bool:
    if isinstance(options.get("client"), httpx.AsyncClient):
        return True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class IdempotentProducer(metaclass=abc.ABCMeta):  # noqa: B024  (ABCMeta only for register())
    """Blocking twin of ``AsyncIdempotentProducer``, run on a private event-loop thread.

    Constructed inside a running event loop, or with an ``httpx.AsyncClient``, it is the
    official client's asyncio producer instead: ``IdempotentProducer(...)`` then returns an
    ``AsyncIdempotentProducer``. ``IdempotentProducer.blocking(...)`` always blocks."""

    def __new__(cls, url: str, producer_id: str, **options: Any) -> IdempotentProducer:
        if cls is IdempotentProducer and _in_async_code(options):
            producer: Any = AsyncIdempotentProducer(url, producer_id, **options)
            return producer  # type: ignore[no-any-return]
        return super().__new__(cls)

    @classmethod
    def blocking(cls, url: str, producer_id: str, **options: Any) -> IdempotentProducer:
        """The blocking producer, even when called from a thread running an event loop."""
        producer = super().__new__(cls)
        producer.__init__(url, producer_id, **options)  # type: ignore[misc]
        return producer

    def __init__(self, url: str, producer_id: str, **options: Any) -> None:
        options.pop("client", None)
        _check_limits(
            producer_id,
            options.get("epoch", 0),
            options.get("max_in_flight", 5),
            options.get("max_batch_bytes", 1024 * 1024),
            options.get("max_batch_items"),
            options.get("linger_ms", 0),
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"producer-{producer_id}", daemon=True
        )
        self._thread.start()

        async def make() -> AsyncIdempotentProducer:
            return AsyncIdempotentProducer(url, producer_id, **options)

        self._producer = self._call(make())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def epoch(self) -> int:
        return self._producer.epoch

    @property
    def next_seq(self) -> int:
        return self._producer.next_seq

    def append(self, data: Any) -> concurrent.futures.Future[IdempotentAppendResult]:
        """Queue ``data`` and return at once; the future resolves when it is acknowledged."""
        result: concurrent.futures.Future[IdempotentAppendResult] = concurrent.futures.Future()

        def enqueue() -> None:
            try:
                inner = self._producer.append(data)
            except BaseException as exc:
                result.set_exception(exc)
                return
            inner.add_done_callback(lambda f: _copy_outcome(f, result))

        self._loop.call_soon_threadsafe(enqueue)
        return result

    def flush(self) -> None:
        self._call(self._producer.flush())

    def restart(self) -> None:
        self._call(self._producer.restart())

    def close_stream(self, data: Any = None, *, seq: int | None = None) -> IdempotentAppendResult:
        return self._call(self._producer.close_stream(data, seq=seq))

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            self._call(self._producer.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def __enter__(self) -> IdempotentProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


IdempotentProducer.register(AsyncIdempotentProducer)
