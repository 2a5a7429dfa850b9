"""``SentinelService``: the detectors as a node service over the telemetry topic.

It reads the telemetry topics (``llm-telemetry``, the SDK's default, and ``llm.telemetry``, the
upstream core's; every partition of each) straight from the store, validates each event (bad
ones go to the dead-letter topic with the reason), runs ``Engine`` and appends the alerts to the
anomalies topic: a JSON topic, so it is readable over Kafka, HTTP catch-up and SSE alike. Its
position commits atomically with the anomalies it produced (``_progress``): after ``kill -9``
and restart it neither loses nor repeats an anomaly. REST answers come from ``_api``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from millstream.log import (
    AppendRequest,
    CreateRequest,
    KvConflict,
    KvWrite,
    LogError,
    ProducerClaim,
    Store,
    StreamConfig,
    StreamGone,
    StreamNotFound,
    split_partition_path,
)
from millstream.telemetry import DEFAULT_TOPIC, AnomalyEvent, ValidationError

from .._service import Route, Service
from ._detectors import DetectorSettings, Engine
from ._progress import CHECKPOINTS, NAMESPACE, STATE_KEY, Progress
from ._validation import mask_pii, parse_call

__all__ = [
    "ANOMALIES_TOPIC",
    "DEAD_LETTER_TOPIC",
    "TELEMETRY_TOPICS",
    "SentinelService",
]

log = logging.getLogger("millstream.sentinel")

TELEMETRY_TOPICS = (DEFAULT_TOPIC, "llm.telemetry")  # the SDK's default first, then upstream's
ANOMALIES_TOPIC = "llm-anomalies"
DEAD_LETTER_TOPIC = "llm-telemetry-dlq"
JSON = StreamConfig(content_type="application/json")
READ_BYTES = 1 << 20
MAX_DEAD_PAYLOAD = 64 * 1024  # characters of a bad payload kept in its dead letter
DISCOVER_EVERY = 1.0  # seconds between looks for new topics and partitions


class SentinelService(Service):
    """The Sentinel inside the node; ``routes()`` serve ``/api/v1`` (see ``_api``)."""

    name = "sentinel"
    run_once = True  # on a cluster, one node detects for everyone (``RunOnce``)

    def __init__(
        self,
        store: Store,
        *,
        fence: Callable[[], KvWrite] | None = None,
        topics: Sequence[str] = TELEMETRY_TOPICS,
        anomalies_topic: str = ANOMALIES_TOPIC,
        dead_letter_topic: str = DEAD_LETTER_TOPIC,
        settings: DetectorSettings | None = None,
        batch_size: int = 2000,
        checkpoint_every: int = 50_000,
        journal_limit: int = 200,
    ) -> None:
        self.store = store
        self._fence = fence  # committed with every progress write on a cluster
        self.topics = tuple(topics)
        self.anomalies_topic = anomalies_topic
        self.dead_letter_topic = dead_letter_topic
        self.settings = settings or DetectorSettings()
        self.batch_size = batch_size
        self.checkpoint_every = checkpoint_every
        self.journal_limit = journal_limit
        self.engine = Engine(self.settings)
        self.progress = Progress()
        self._version = 0  # of the progress record; 0: not written yet
        self._sources: list[str] = []
        self._discovered_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._healthy = True
        self._last_error: str | None = None

    @property
    def primary_topic(self) -> str:
        return self.topics[0]

    def routes(self) -> list[Route]:
        from ._api import SentinelApi

        return [Route("/api/v1", SentinelApi(self))]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for path in (self.primary_topic, self.anomalies_topic, self.dead_letter_topic):
            await self._ensure_stream(path)
        await self._recover()
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="sentinel")

    async def aclose(self) -> None:
        self._stopping.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
            if self._healthy and self.progress.since_checkpoint:
                with contextlib.suppress(LogError):
                    await self._checkpoint()

    async def health(self) -> dict[str, Any]:
        lag = await self.lag()
        return {
            "status": "ok" if self._healthy else "degraded",
            "processed": self.progress.processed,
            "anomalies": self.progress.anomalies,
            "dead_letters": self.progress.dead_letters,
            "lag": lag,
            "sources": list(self._sources),
            **({"error": self._last_error} if self._last_error else {}),
        }

    async def lag(self) -> int:
        """Telemetry events stored but not yet processed, over every source."""
        total = 0
        for path in self._sources:
            try:
                info = await self.store.head(path)
            except (StreamNotFound, StreamGone):
                continue
            total += max(0, info.tail - self.progress.positions.get(path, 0))
        return total

    async def _ensure_stream(self, path: str) -> None:
        try:
            await self.store.create(path, CreateRequest(config=JSON))
        except LogError as exc:  # it exists with another configuration: use it as it is
            log.info("sentinel: using the existing stream %s (%s)", path, exc)

    # -- recovery ----------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Load the progress record, the latest snapshot, and replay the journal silently."""
        item = await self.store.kv_get(NAMESPACE, STATE_KEY)
        if item is None:
            self.progress, self._version = Progress(), 0
            self.engine = Engine(self.settings)
            return
        progress = Progress.decode(item.value)
        try:
            engine = await self._rebuild(progress)
        except (LogError, ValueError, KeyError, TypeError, IndexError) as exc:
            # An unreadable snapshot must not keep the node from starting: go on from the
            # recorded positions (no anomaly is repeated) with fresh baselines.
            log.error("sentinel: detector state not restored (%s); starting it afresh", exc)
            engine = Engine(self.settings)
        self.progress, self._version, self.engine = progress, item.version, engine
        log.info(
            "sentinel: resumed at %s (%d events replayed from the journal)",
            progress.positions,
            sum(end - start for _, start, end in progress.journal),
        )

    async def _rebuild(self, progress: Progress) -> Engine:
        """The engine as it was after the last committed batch: snapshot plus journal."""
        engine = Engine(self.settings)
        if progress.checkpoint is not None:
            read = await self.store.read(CHECKPOINTS, progress.checkpoint, max_bytes=1)
            snapshot = orjson.loads(read.payloads[0])
            engine = Engine.from_state(snapshot["engine"], self.settings)
        for path, start, end in progress.journal:
            position = start
            while position < end:
                result = await self.store.read(path, position, max_bytes=READ_BYTES)
                if not result.payloads:
                    break
                for offset, payload in enumerate(result.payloads, start=result.start):
                    if offset >= end:
                        break
                    try:
                        call = parse_call(payload)
                    except ValidationError:
                        continue
                    engine.alerts(call, source=path, position=offset)
                position = result.start + len(result.payloads)
        return engine

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self._step()
                self._healthy, self._last_error = True, None
                if not worked:
                    await self._wait()
            except KvConflict:
                log.warning("sentinel: its progress changed underneath it; reloading")
                await self._recover()
            except Exception as exc:  # never die: report, back off, reload, go on
                log.exception("sentinel: processing failed; retrying")
                self._healthy, self._last_error = False, str(exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                with contextlib.suppress(Exception):
                    await self._recover()

    async def sources(self) -> list[str]:
        """The telemetry streams read: every partition of every topic in ``topics``."""
        await self._discover()
        return list(self._sources) or [self.primary_topic]

    async def _discover(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._sources and now - self._discovered_at < DISCOVER_EVERY:
            return
        self._discovered_at = now
        found: list[str] = []
        for topic in self.topics:
            for path in await self.store.list_paths(topic):
                parts = split_partition_path(path)
                if parts is not None and parts[0] == topic:
                    found.append(path)
        self._sources = found

    async def _step(self) -> bool:
        """Process one batch from each source that has data; False when none had any."""
        await self._discover()
        worked = False
        for path in self._sources:
            if self._stopping.is_set():
                break
            position = self.progress.positions.get(path, 0)
            try:
                result = await self.store.read(path, position, max_bytes=READ_BYTES)
            except (StreamNotFound, StreamGone):
                self._discovered_at = 0.0
                continue
            except LogError as exc:  # e.g. the stream was re-created shorter: start over
                log.warning(
                    "sentinel: cannot read %s at %d (%s); from its start", path, position, exc
                )
                result = await self.store.read(path, 0, max_bytes=READ_BYTES)
            payloads = result.payloads[: self.batch_size]
            if not payloads:
                continue
            await self._process(path, result.start, payloads)
            worked = True
        return worked

    async def _wait(self) -> None:
        waits = [
            asyncio.create_task(
                self.store.wait(path, self.progress.positions.get(path, 0), DISCOVER_EVERY)
            )
            for path in self._sources
        ]
        waits.append(asyncio.create_task(self._stopping.wait()))
        try:
            await asyncio.wait(waits, timeout=DISCOVER_EVERY, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _process(self, path: str, start: int, payloads: list[bytes]) -> None:
        anomalies: list[AnomalyEvent] = []
        dead: list[bytes] = []
        engine = self.engine
        for offset, payload in enumerate(payloads, start=start):
            try:
                call = parse_call(payload)
            except ValidationError as exc:
                dead.append(_dead_letter(path, offset, exc.message, payload))
                continue
            anomalies.extend(engine.alerts(call, source=path, position=offset))
        end = start + len(payloads)
        progress = self.progress.copy()
        progress.positions[path] = end
        progress.journal.append([path, start, end])
        progress.processed += len(payloads) - len(dead)
        progress.since_checkpoint += len(payloads)
        progress.anomalies += len(anomalies)
        progress.dead_letters += len(dead)
        if dead:
            await self.store.append(
                self.dead_letter_topic,
                AppendRequest(
                    dead,
                    producer=ProducerClaim("sentinel", progress.dlq_epoch, progress.dlq_seq),
                ),
            )  # a redo after a crash is answered "duplicate" and writes nothing
            progress.dlq_seq += 1
        await self._commit(progress, [a.to_json() for a in anomalies])
        if (
            progress.since_checkpoint >= self.checkpoint_every
            or len(progress.journal) >= self.journal_limit
        ):
            await self._checkpoint()

    async def _commit(self, progress: Progress, anomalies: list[bytes]) -> None:
        write = KvWrite(NAMESPACE, STATE_KEY, progress.encode(), expect_version=self._version)
        writes = [write] if self._fence is None else [self._fence(), write]
        if anomalies:
            await self.store.append(self.anomalies_topic, AppendRequest(anomalies, kv=writes))
            item = await self.store.kv_get(NAMESPACE, STATE_KEY)
            assert item is not None
            self._version = item.version
        else:
            self._version = (await self.store.kv_write(writes))[-1]
        self.progress = progress

    async def _checkpoint(self) -> None:
        """Snapshot the detectors, point the progress record at it, drop older snapshots."""
        snapshot = orjson.dumps({"engine": self.engine.to_state()})
        try:
            appended = await self.store.append(CHECKPOINTS, AppendRequest([snapshot]))
        except StreamNotFound:
            await self.store.create(CHECKPOINTS, CreateRequest(StreamConfig("application/json")))
            appended = await self.store.append(CHECKPOINTS, AppendRequest([snapshot]))
        progress = self.progress.copy()
        progress.checkpoint = appended.tail - 1
        progress.journal = []
        progress.since_checkpoint = 0
        await self._commit(progress, [])
        await self.store.delete_records(CHECKPOINTS, appended.tail - 1)


def _dead_letter(path: str, offset: int, reason: str, payload: bytes) -> bytes:
    text = payload.decode("utf-8", "replace")
    return orjson.dumps(
        {
            "source": path,
            "offset": offset,
            "reason": reason,
            "received_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "payload": mask_pii(text[:MAX_DEAD_PAYLOAD]),
            "truncated": len(text) > MAX_DEAD_PAYLOAD,
        }
    )
