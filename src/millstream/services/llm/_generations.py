"""Durable generations: each runs as a task of its own, independent of any HTTP connection, and
writes what the provider says to its stream ``__llm/generations/<id>`` as it arrives.

Lifecycle of one generation (records: ``millstream.llm._wire``):

1. admitted by the ledger, which decides at once and commits the reservation together with the
   in-flight marker ``llm.inflight/<id>`` (and the idempotency key) in the background, so a
   crash at any later point is found at the next start; the provider call starts at once, and
   is cancelled if that commit fails;
2. once the marker is on disk the stream is created with the ``start`` record (and whatever
   text arrived meanwhile), while the provider call runs;
3. text deltas go to readers the moment they arrive and to the stream in the background: while
   one append is being committed the next deltas gather for the next one;
4. the terminal ``end`` record closes the stream in one append with the deletion of the
   in-flight marker and the ``llm.unsettled`` marker of its usage; only then do readers get it
   (a non-streamed answer, or the stream's last chunk and ``[DONE]``); the ledger then settles.

So the disk work overlaps the provider call, and the one write that must follow it (the terminal
record) is the only one a response waits for. Readers of a running generation (the response that
started it, a resume, an idempotent retry) read its records from memory; a finished one's from
the store. A dropped connection changes nothing upstream; ``cancel`` is explicit. A gateway that
stops ends its running generations ``failed``; after a crash ``recover`` does the same from the
in-flight markers, billing the output already written. A reader that had text the crash lost
resumes past the stream's end and gets the terminal record.
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
    "GenerationFailed",
    "GenerationNotFound",
    "GenerationRefused",
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


class GenerationRefused(Exception):
    """The admission of a generation failed to commit (``cause``: ``AdmissionRefused`` when
    another process spent the budget first, else a ``LogError``); it never ran for good."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(slots=True, eq=False)
class _Running:
    launch: Launch
    admitted: asyncio.Future[None]  # the admission's commit (the ledger's ``durable``)
    done: asyncio.Future[dict[str, Any]]  # the end record, once on disk
    records: list[dict[str, Any]] = field(default_factory=list)  # position = index
    encoded: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    written: int = 0  # records on disk (or being written)
    created: bool = False
    ended: bool = False  # nothing more will be published
    error: BaseException | None = None  # why readers stop without an end record
    wake_writer: asyncio.Event = field(default_factory=asyncio.Event)
    published: asyncio.Future[None] | None = None  # readers wait on it
    finishing: bool = False
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None

    def publish(self, record: dict[str, Any] | None) -> None:
        """Add ``record`` (if any) and wake the readers."""
        if record is not None:
            self.records.append(record)
        waiting, self.published = self.published, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def changed(self) -> asyncio.Future[None]:
        if self.published is None:
            self.published = asyncio.get_running_loop().create_future()
        return self.published


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
        self._settling: set[asyncio.Task[None]] = set()

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
        running = list(self._running.values())
        for run in running:
            run.cancel_reason = "shutdown"
            if run.task is not None and not run.finishing:  # a finishing one writes its end
                run.task.cancel()
        for run in running:
            if run.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task
        for task in list(self._settling):
            with contextlib.suppress(Exception):
                await task

    @property
    def running_count(self) -> int:
        return len(self._running)

    # -- running --------------------------------------------------------------------------

    def launch(self, launch: Launch, admitted: asyncio.Future[None]) -> None:
        """Start ``launch`` now; ``admitted`` is its admission's commit (``Admission.durable``):
        if that fails, the generation is cancelled and its readers get ``GenerationRefused``."""
        loop = asyncio.get_running_loop()
        run = _Running(launch, admitted, loop.create_future())
        self._running[launch.id] = run
        self._add(run, launch.start_record())
        run.task = asyncio.create_task(self._run(run), name=f"llm:{launch.id}")

        def on_end(task: asyncio.Task[None]) -> None:
            if task.cancelled():  # before its first step: ``_run`` never ran
                self._running.pop(launch.id, None)
                self._stop(run, GenerationFailed(asyncio.CancelledError()))

        run.task.add_done_callback(on_end)

        def on_admission(future: asyncio.Future[None]) -> None:
            if future.cancelled() or future.exception() is not None:
                run.cancel_reason = "refused"
                if run.task is not None and not run.finishing:
                    run.task.cancel()

        admitted.add_done_callback(on_admission)

    @staticmethod
    def _add(run: _Running, record: dict[str, Any]) -> None:
        run.encoded.append(orjson.dumps(record))
        run.publish(record)

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

    async def _persist(self, run: _Running) -> None:
        """Write the records to the stream as they come, once the admission is on disk; stop
        (after the write in progress) when the generation finishes."""
        try:
            await asyncio.shield(run.admitted)
        except Exception:
            return
        path = generation_path(run.launch.id)
        run.written = len(run.encoded)
        await self._store.create(path, CreateRequest(self._config, run.encoded[: run.written]))
        run.created = True
        while True:
            await run.wake_writer.wait()
            run.wake_writer.clear()
            if run.finishing:
                return
            batch = run.encoded[run.written :]
            if batch:
                run.written += len(batch)
                await self._store.append(path, AppendRequest(batch))

    async def _run(self, run: _Running) -> None:
        launch = run.launch
        persist = asyncio.create_task(self._persist(run))
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
                                run.texts.append(event.text)
                                self._add(run, {"type": "delta", "text": event.text})
                                run.wake_writer.set()
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
            await self._finish(run, persist, finished, status, error)
        finally:
            self._running.pop(launch.id, None)

    async def _finish(
        self,
        run: _Running,
        persist: asyncio.Task[None],
        finished: Finished | None,
        status: str,
        error: dict[str, Any] | None,
    ) -> None:
        launch = run.launch
        run.wake_writer.set()
        try:
            await run.admitted
        except BaseException as exc:  # never admitted: nothing of it is on disk
            await asyncio.gather(persist, return_exceptions=True)
            self._stop(run, GenerationRefused(exc))
            return
        try:
            await persist
            if not run.created:
                path = generation_path(launch.id)
                await self._store.create(path, CreateRequest(self._config, run.encoded[:1]))
                run.written, run.created = 1, True
        except LogError as exc:
            log.error("generation %s could not be written: %s", launch.id, exc)
            self._stop(run, exc)  # the in-flight marker stays: the next start ends it
            return
        texts = run.texts
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
        messages = [*run.encoded[run.written :], orjson.dumps(end)]
        kv = [KvWrite(NS_INFLIGHT, launch.id, None), self._ledger.unsettled_write(settlement)]
        try:
            await self._store.append(
                generation_path(launch.id), AppendRequest(messages, close=True, kv=kv)
            )
        except LogError as exc:
            log.error("generation %s: terminal record not written: %s", launch.id, exc)
            self._stop(run, exc)  # the in-flight marker stays: the next start ends it
            return
        run.written = len(run.encoded) + 1
        run.ended = True
        self._add(run, end)
        run.done.set_result(end)
        task = asyncio.create_task(self._settle(settlement))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, settlement: Settlement) -> None:
        try:
            await self._ledger.settle(settlement)
        except Exception as exc:  # the unsettled marker stays: the next start settles it
            log.error("generation %s: usage not settled yet: %s", settlement.generation, exc)

    @staticmethod
    def _stop(run: _Running, error: BaseException) -> None:
        run.error = error
        run.ended = True
        run.publish(None)
        if not run.done.done():
            run.done.set_exception(error)
            run.done.exception()  # retrieved: readers may never ask

    # -- reading --------------------------------------------------------------------------

    async def start_record(self, generation: str) -> dict[str, Any]:
        """The ``start`` record (``GenerationNotFound`` if there is none)."""
        run = self._running.get(generation)
        if run is not None:
            return run.records[0]
        try:
            result = await self._store.read(generation_path(generation), 0)
        except (StreamNotFound, StreamGone, InvalidRequest) as exc:
            raise GenerationNotFound(generation) from exc
        if not result.payloads:
            raise GenerationNotFound(generation)
        record: dict[str, Any] = orjson.loads(result.payloads[0])
        return record

    async def admitted(self, generation: str) -> None:
        """Wait until the generation's admission is on disk (a finished one's is);
        ``GenerationRefused`` if it failed."""
        run = self._running.get(generation)
        if run is None:
            return
        try:
            await asyncio.shield(run.admitted)
        except Exception as exc:
            raise GenerationRefused(exc) from exc

    async def events(
        self, generation: str, start: int, *, follow: bool = True
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """``(position, record)`` from ``start`` on; with ``follow`` until the ``end`` record
        (or the gateway shutting down). A ``start`` at or past the end of a finished generation
        reads its ``end`` record again: after a crash, the reader may have had text the stream
        lost, whose positions the ``end`` record now holds."""
        run = self._running.get(generation)
        if run is not None:
            await self.admitted(generation)
            position = start
            while True:
                records = run.records
                while position < len(records):
                    yield position, records[position]
                    position += 1
                if run.ended:
                    if run.error is not None:
                        raise GenerationFailed(run.error)
                    if start >= len(records) and records[-1].get("type") == "end":
                        yield len(records) - 1, records[-1]
                    return
                if not follow:
                    return
                await asyncio.shield(run.changed())  # shared by every reader
        path = generation_path(generation)
        try:
            if start > 0:
                info = await self._store.head(path)
                if start >= info.tail and info.closed:
                    start = info.tail - 1
            async for item in self._read(path, start, follow=follow):
                yield item
        except (StreamNotFound, StreamGone, InvalidRequest) as exc:
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
        """Wait for the generation to end: ``(start record, full text, end record)``;
        ``GenerationRefused``/``GenerationFailed`` if it never ran or was not written."""
        run = self._running.get(generation)
        if run is not None:
            try:
                end = await asyncio.shield(run.done)
            except GenerationRefused:
                raise
            except Exception as exc:
                raise GenerationFailed(exc) from exc
            return run.records[0], "".join(run.texts), end
        start: dict[str, Any] | None = None
        texts: list[str] = []
        end_record: dict[str, Any] | None = None
        async for _, record in self.events(generation, 0):
            kind = record.get("type")
            if kind == "start":
                start = record
            elif kind == "delta":
                texts.append(record["text"])
            elif kind == "end":
                end_record = record
        if start is None or end_record is None:
            raise GenerationNotFound(generation)
        return start, "".join(texts), end_record

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


class GenerationFailed(Exception):
    """A running generation stopped without a terminal record on disk (the store failed, or
    the gateway is stopping); the next start ends it ``failed``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"the generation could not be written: {cause}")
        self.cause = cause


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
