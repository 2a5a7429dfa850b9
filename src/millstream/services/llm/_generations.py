"""Durable generations: each runs as a task of its own, independent of any HTTP connection, and
writes what the provider says to its stream ``__llm/generations/<id>`` as it arrives.

Lifecycle of one generation (records: ``millstream.llm._wire``):

1. admitted by the ledger together with its in-flight marker ``llm.inflight/<id>`` (and its
   idempotency key), so a crash at any later point is found at the next start;
2. the stream is created with the ``start`` record while the provider call already runs;
3. text deltas are appended as they come: while one append is being committed, the next
   deltas gather and go in the next (the store's group commit does the rest);
4. the terminal ``end`` record closes the stream in one append with the deletion of the
   in-flight marker and the ``llm.unsettled`` marker of its usage; the ledger then settles.

Readers (the response that started it, a resume, an idempotent retry) only read the stream, so
a dropped connection changes nothing upstream; ``cancel`` is explicit. A gateway that stops
ends its running generations ``failed``; after a crash ``recover`` does the same from the
in-flight markers, billing the output already written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from millstream.log import (
    AppendRequest,
    CreateRequest,
    InvalidRequest,
    KvWrite,
    LogError,
    Store,
    StreamConfig,
    StreamGone,
    StreamNotFound,
)

from ._ledger import Ledger, Settlement
from ._pricing import PriceTable
from ._provider import Finished, Provider, ProviderError, ProviderRequest, TextDelta
from ._tokens import estimate_tokens

__all__ = [
    "GENERATION_PREFIX",
    "NS_IDEMPOTENCY",
    "NS_INFLIGHT",
    "GenerationNotFound",
    "Generations",
    "Launch",
    "new_generation_id",
]

log = logging.getLogger("millstream.llm")

GENERATION_PREFIX = "__llm/generations/"
NS_INFLIGHT = "llm.inflight"
NS_IDEMPOTENCY = "llm.idempotency"
_JSON = "application/json"
_READ_WAIT = 15.0


def new_generation_id() -> str:
    return f"gen-{uuid.uuid4().hex}"


def generation_path(generation: str) -> str:
    return GENERATION_PREFIX + generation


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class GenerationNotFound(Exception):
    """No generation with this id (or not this project's)."""


@dataclass(slots=True)
class Launch:
    """Everything a generation needs, decided before it runs."""

    id: str
    project: str
    token_id: str
    tier: str
    provider: Provider
    request: ProviderRequest
    timeout: float
    prompt_tokens: int
    reserve_tokens: int
    reserve_usd: float
    month: str
    read_token_hash: str
    created: float = field(default_factory=time.time)

    def start_record(self) -> dict[str, Any]:
        return {
            "type": "start",
            "id": self.id,
            "project": self.project,
            "model": self.tier,
            "provider": self.provider.name,
            "provider_model": self.request.model,
            "created": int(self.created),
            "read_token_hash": self.read_token_hash,
        }

    def inflight_record(self) -> bytes:
        return orjson.dumps(
            {
                "start": self.start_record(),
                "token_id": self.token_id,
                "prompt_tokens": self.prompt_tokens,
                "reserve_tokens": self.reserve_tokens,
                "reserve_usd": self.reserve_usd,
                "month": self.month,
            }
        )


@dataclass(slots=True)
class _Running:
    launch: Launch
    created: asyncio.Future[None]
    done: asyncio.Future[dict[str, Any]]  # the end record, once committed
    pending: list[bytes] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finishing: bool = False
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None


class Generations:
    """Running and finished generations of one gateway (see the module docstring)."""

    def __init__(
        self, store: Store, ledger: Ledger, prices: PriceTable, *, ttl_seconds: int | None
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._prices = prices
        self._config = StreamConfig(content_type=_JSON, ttl_seconds=ttl_seconds)
        self._running: dict[str, _Running] = {}
        self._closing = False

    # -- lifecycle ------------------------------------------------------------------------

    async def recover(self) -> int:
        """End every generation a previous run left in flight: ``failed``, usage billed for
        the prompt estimate and the output already written."""
        items = await self._store.kv_scan(NS_INFLIGHT)
        for generation, item in items:
            data = orjson.loads(item.value)
            start = data["start"]
            path = generation_path(generation)
            texts: list[str] = []
            exists = True
            try:
                async for _, record in self._read(path, 0, follow=False):
                    if record.get("type") == "delta":
                        texts.append(record["text"])
            except (StreamNotFound, StreamGone):
                exists = False
            output = estimate_tokens("".join(texts)) if texts else 0
            settlement = Settlement(
                generation=generation,
                project=start["project"],
                month=data["month"],
                tier=start["model"],
                reserve_tokens=data["reserve_tokens"],
                reserve_usd=data["reserve_usd"],
                input_tokens=data["prompt_tokens"],
                output_tokens=output,
                cost=self._prices.cost(
                    start["model"], start["provider_model"], data["prompt_tokens"], output
                ),
                finished=time.time(),
            )
            end = _end_record(
                "failed",
                None,
                settlement,
                {
                    "type": "gateway_restarted",
                    "message": "the gateway stopped during this generation",
                },
            )
            kv = [KvWrite(NS_INFLIGHT, generation, None), self._ledger.unsettled_write(settlement)]
            messages = [orjson.dumps(end)]
            try:
                if exists:
                    await self._store.append(path, AppendRequest(messages, close=True, kv=kv))
                else:
                    await self._store.create(
                        path,
                        CreateRequest(self._config, [orjson.dumps(start), *messages], closed=True),
                    )
                    await self._store.kv_write(kv)
            except LogError:
                log.exception("could not end generation %s left by the last run", generation)
                continue
            await self._ledger.settle(settlement)
        return len(items)

    async def aclose(self) -> None:
        """End running generations ``failed`` (their readers get the terminal record)."""
        self._closing = True
        running = list(self._running.values())
        for run in running:
            run.cancel_reason = "shutdown"
            if run.task is not None:
                run.task.cancel()
        for run in running:
            if run.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task

    @property
    def running_count(self) -> int:
        return len(self._running)

    # -- running --------------------------------------------------------------------------

    def launch(self, launch: Launch) -> None:
        """Start ``launch`` (already admitted, its in-flight marker committed)."""
        loop = asyncio.get_running_loop()
        run = _Running(launch, loop.create_future(), loop.create_future())
        self._running[launch.id] = run
        run.task = asyncio.create_task(self._run(run), name=f"llm:{launch.id}")

    async def cancel(self, generation: str) -> bool:
        """Cancel a running generation of this node; False if it already ended."""
        run = self._running.get(generation)
        if run is None or run.task is None or run.finishing:
            return False
        run.cancel_reason = "cancelled"
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(run.done)
        return True

    async def _create(self, run: _Running) -> None:
        launch = run.launch
        try:
            await self._store.create(
                generation_path(launch.id),
                CreateRequest(self._config, [orjson.dumps(launch.start_record())]),
            )
        except BaseException as exc:
            run.created.set_exception(exc)
            raise
        run.created.set_result(None)

    async def _writer(self, run: _Running) -> None:
        await run.created
        path = generation_path(run.launch.id)
        while True:
            await run.wake.wait()
            run.wake.clear()
            if run.finishing:
                return
            batch, run.pending = run.pending, []
            if batch:
                await self._store.append(path, AppendRequest(batch))

    async def _run(self, run: _Running) -> None:
        launch = run.launch
        creating = asyncio.create_task(self._create(run))
        writer = asyncio.create_task(self._writer(run))
        texts: list[str] = []
        finished: Finished | None = None
        status = "completed"
        error: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(launch.timeout):
                events = launch.provider.generate(launch.request)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, TextDelta):
                            if event.text:
                                texts.append(event.text)
                                run.pending.append(
                                    orjson.dumps({"type": "delta", "text": event.text})
                                )
                                run.wake.set()
                        else:
                            finished = event
        except TimeoutError:
            status = "timed_out"
            error = {
                "type": "timeout",
                "message": f"the generation took longer than {launch.timeout:g} s",
            }
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if run.cancel_reason == "cancelled":
                status = "cancelled"
                error = {"type": "cancelled", "message": "cancelled by request"}
            else:
                status = "failed"
                error = {"type": "gateway_stopped", "message": "the gateway stopped"}
        except ProviderError as exc:
            status = "failed"
            error = {"type": f"upstream_{exc.kind}", "message": exc.message, "status": exc.status}
            if exc.retry_after is not None:
                error["retry_after"] = exc.retry_after
        except Exception as exc:
            log.exception("generation %s failed", launch.id)
            status = "failed"
            error = {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        run.finishing = True
        try:
            await self._finish(run, creating, writer, texts, finished, status, error)
        finally:
            self._running.pop(launch.id, None)

    async def _finish(
        self,
        run: _Running,
        creating: asyncio.Task[None],
        writer: asyncio.Task[None],
        texts: list[str],
        finished: Finished | None,
        status: str,
        error: dict[str, Any] | None,
    ) -> None:
        launch = run.launch
        run.wake.set()
        try:
            await creating
            await writer
        except LogError as exc:
            log.error("generation %s could not be written: %s", launch.id, exc)
        if finished is not None and finished.input_tokens is not None:
            input_tokens = finished.input_tokens
        else:
            input_tokens = launch.prompt_tokens if (texts or finished) else 0
        if finished is not None and finished.output_tokens is not None:
            output_tokens = finished.output_tokens
        else:
            output_tokens = estimate_tokens("".join(texts)) if texts else 0
        settlement = Settlement(
            generation=launch.id,
            project=launch.project,
            month=launch.month,
            tier=launch.tier,
            reserve_tokens=launch.reserve_tokens,
            reserve_usd=launch.reserve_usd,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=self._prices.cost(launch.tier, launch.request.model, input_tokens, output_tokens),
            finished=time.time(),
        )
        end = _end_record(status, finished.finish_reason if finished else None, settlement, error)
        messages = [*run.pending, orjson.dumps(end)]
        run.pending = []
        kv = [KvWrite(NS_INFLIGHT, launch.id, None), self._ledger.unsettled_write(settlement)]
        try:
            await self._store.append(
                generation_path(launch.id), AppendRequest(messages, close=True, kv=kv)
            )
        except LogError as exc:
            # The in-flight marker stays: the next start ends it (recover).
            log.error("generation %s: terminal record not written: %s", launch.id, exc)
            if not run.done.done():
                run.done.set_exception(exc)
            return
        if not run.done.done():
            run.done.set_result(end)
        await self._ledger.settle(settlement)

    # -- reading --------------------------------------------------------------------------

    async def start_record(self, generation: str) -> dict[str, Any]:
        """The ``start`` record (``GenerationNotFound`` if there is none)."""
        run = self._running.get(generation)
        if run is not None:
            return run.launch.start_record()
        try:
            result = await self._store.read(generation_path(generation), 0)
        except (StreamNotFound, StreamGone, InvalidRequest) as exc:
            raise GenerationNotFound(generation) from exc
        if not result.payloads:
            raise GenerationNotFound(generation)
        record: dict[str, Any] = orjson.loads(result.payloads[0])
        return record

    async def wait_created(self, generation: str) -> None:
        run = self._running.get(generation)
        if run is not None:
            await asyncio.shield(run.created)

    async def events(
        self, generation: str, start: int, *, follow: bool = True
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """``(position, record)`` from ``start`` on; with ``follow`` until the ``end`` record
        (or the gateway shutting down)."""
        await self.wait_created(generation)
        try:
            async for item in self._read(generation_path(generation), start, follow=follow):
                yield item
        except (StreamNotFound, StreamGone) as exc:
            raise GenerationNotFound(generation) from exc

    async def _read(
        self, path: str, start: int, *, follow: bool
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        position = start
        store = self._store
        while True:
            result = await store.read(path, position)
            for payload in result.payloads:
                yield position, orjson.loads(payload)
                position += 1
            if result.closed and position >= result.tail:
                return
            if not follow:
                return
            if not result.payloads:
                if store.notifier.closing:
                    return
                await store.wait(path, position, _READ_WAIT)

    async def outcome(self, generation: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """Wait for the generation to end: ``(start record, full text, end record)``."""
        run = self._running.get(generation)
        if run is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(run.done)
        start: dict[str, Any] | None = None
        texts: list[str] = []
        end: dict[str, Any] | None = None
        async for _, record in self.events(generation, 0):
            kind = record.get("type")
            if kind == "start":
                start = record
            elif kind == "delta":
                texts.append(record["text"])
            elif kind == "end":
                end = record
        if start is None or end is None:
            raise GenerationNotFound(generation)
        return start, "".join(texts), end

    async def terminal(self, generation: str) -> dict[str, Any] | None:
        """The ``end`` record if the generation has ended, else ``None``; no waiting."""
        run = self._running.get(generation)
        if run is not None:
            if run.done.done() and run.done.exception() is None:
                return run.done.result()
            return None
        try:
            info = await self._store.head(generation_path(generation))
            if not info.closed or info.tail == 0:
                return None
            result = await self._store.read(generation_path(generation), info.tail - 1)
        except (StreamNotFound, StreamGone, InvalidRequest):
            return None
        record: dict[str, Any] = orjson.loads(result.payloads[0])
        return record if record.get("type") == "end" else None


def _end_record(
    status: str,
    finish_reason: str | None,
    settlement: Settlement,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "type": "end",
        "status": status,
        "finish_reason": finish_reason or ("stop" if status == "completed" else status),
        "usage": {
            "input_tokens": settlement.input_tokens,
            "output_tokens": settlement.output_tokens,
            "total_tokens": settlement.input_tokens + settlement.output_tokens,
        },
        "cost": round(settlement.cost, 8),
        "error": error,
    }
