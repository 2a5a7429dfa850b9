"""Budgets, usage and rate limits of projects, kept in the store's key-value table.

Records (namespaces ``llm.*``):

- ``llm.projects/<project>``: ``{"budget_tokens", "budget_usd", "created"}`` (``null``: none);
- ``llm.usage/<project>/m/<YYYY-MM>``: the month's counter ``{"tokens", "cost", "requests",
  "reserved_tokens", "reserved_usd"}``, what budgets are checked against;
- ``llm.usage/<project>/h/<YYYY-MM-DDTHH>``: an hour's usage by model, what ``/v1/usage`` sums
  over a month (since the 1st, UTC), a week (168 hours) or a day (24 hours);
- ``llm.rate/<token id>``: the key's rate window (``_ratelimit``);
- ``llm.unsettled/<generation>``: a finished generation whose usage is not yet in the counters.

How it stays exact under concurrency: one worker per project takes every pending admission and
settlement in arrival order, decides them against the counters, and commits the whole group in
one ``kv_write`` with compare-and-set on each counter it changed (plus the records the caller
asked to commit with an admission: generation, in-flight marker, idempotency key). A conflict
(another node, or a process sharing the file) drops the cached counters and decides the group
again from the store, so no two admissions ever spend the same tokens. An admission reserves its
prompt estimate plus its output limit, clamped to what the budget has left; a settlement moves
that reservation to the actual usage. A generation's terminal record commits with its
``llm.unsettled`` marker and the settlement deletes it with the counter change, so a crash in
between is settled at the next start (``recover``), never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from millstream.log import KvConflict, KvWrite, StorageError, Store

from ._pricing import PriceTable
from ._ratelimit import RateDecision, RateLimits, RateWindow

__all__ = [
    "NS_PROJECTS",
    "NS_RATE",
    "NS_UNSETTLED",
    "NS_USAGE",
    "PERIODS",
    "Admission",
    "AdmissionRefused",
    "Ledger",
    "ProjectRecord",
    "Settlement",
    "Ticket",
]

NS_PROJECTS = "llm.projects"
NS_USAGE = "llm.usage"
NS_RATE = "llm.rate"
NS_UNSETTLED = "llm.unsettled"
PERIODS = ("month", "week", "day")
_MAX_ATTEMPTS = 16


def month_key(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m")


def hour_key(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H")


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    budget_tokens: int | None = None
    budget_usd: float | None = None
    created: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "budget_tokens": self.budget_tokens,
                "budget_usd": self.budget_usd,
                "created": self.created,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> ProjectRecord:
        data = orjson.loads(raw)
        return cls(data.get("budget_tokens"), data.get("budget_usd"), data.get("created", 0.0))


@dataclass(slots=True)
class Ticket:
    """An admission to decide: who asks, what it may cost, what commits with it."""

    project: str
    token_id: str
    limits: RateLimits
    tier: str
    model_id: str | None
    prompt_tokens: int
    max_tokens: int
    #: Records to commit with the admission, built from its figures (may run more than once).
    writes_for: Callable[[Admission], list[KvWrite]] | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    max_tokens: int  # the output limit to ask the provider for (clamped to the budget)
    reserve_tokens: int
    reserve_usd: float
    month: str
    rate_headers: list[tuple[bytes, bytes]]


class AdmissionRefused(Exception):
    """``kind``: ``budget`` (with ``remaining``), ``rate`` (with ``decision``) or ``conflict``
    (a record committed with the admission already exists: ``namespace``/``key``)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        decision: RateDecision | None = None,
        namespace: str = "",
        key: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.decision = decision
        self.namespace = namespace
        self.key = key


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished generation's usage, moving its reservation to what it actually cost."""

    generation: str
    project: str
    month: str
    tier: str
    reserve_tokens: int
    reserve_usd: float
    input_tokens: int
    output_tokens: int
    cost: float
    finished: float

    def to_json(self) -> bytes:
        return orjson.dumps({k: getattr(self, k) for k in self.__slots__})

    @classmethod
    def from_json(cls, raw: bytes) -> Settlement:
        data = orjson.loads(raw)
        return cls(**{k: data[k] for k in cls.__slots__})


@dataclass(slots=True)
class _Op:
    kind: str  # "admit", "settle", "barrier"
    future: asyncio.Future[Any]
    ticket: Ticket | None = None
    settlement: Settlement | None = None


@dataclass(slots=True)
class _Queue:
    ops: list[_Op] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


_ABSENT: tuple[dict[str, Any] | None, int] = (None, 0)
_Loader = Callable[[str, str], Awaitable[tuple[dict[str, Any] | None, int]]]


class _Draft:
    """Counters as one commit attempt changes them: copies of the cached values, the
    versions they were read at, and which ones changed."""

    def __init__(self, load: _Loader) -> None:
        self._load = load
        self.values: dict[tuple[str, str], dict[str, Any]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.touched: set[tuple[str, str]] = set()

    async def value(self, namespace: str, key: str) -> dict[str, Any]:
        slot = (namespace, key)
        if slot not in self.values:
            loaded, version = await self._load(namespace, key)
            self.values[slot] = dict(loaded or {})
            self.versions[slot] = version
        return self.values[slot]


class Ledger:
    """See the module docstring."""

    def __init__(self, store: Store, prices: PriceTable) -> None:
        self._store = store
        self._prices = prices
        self._queues: dict[str, _Queue] = {}
        #: (namespace, key) -> (decoded value or None, version); only counters are cached.
        self._cache: dict[tuple[str, str], tuple[dict[str, Any] | None, int]] = {}

    # -- projects -------------------------------------------------------------------------

    async def project(self, name: str) -> ProjectRecord | None:
        item = await self._store.kv_get(NS_PROJECTS, name)
        return None if item is None else ProjectRecord.from_json(item.value)

    async def ensure_project(
        self,
        name: str,
        *,
        budget_tokens: int | None = None,
        budget_usd: float | None = None,
        replace_budget: bool = False,
    ) -> ProjectRecord:
        """Create the project, or update its budget when ``replace_budget``."""
        while True:
            item = await self._store.kv_get(NS_PROJECTS, name)
            if item is not None and not replace_budget:
                return ProjectRecord.from_json(item.value)
            created = ProjectRecord.from_json(item.value).created if item else time.time()
            record = ProjectRecord(budget_tokens, budget_usd, created)
            write = KvWrite(
                NS_PROJECTS, name, record.to_json(), expect_version=item.version if item else 0
            )
            with contextlib.suppress(KvConflict):
                await self._store.kv_write([write])
                return record

    async def projects(self) -> list[tuple[str, ProjectRecord]]:
        items = await self._store.kv_scan(NS_PROJECTS)
        return [(key, ProjectRecord.from_json(item.value)) for key, item in items]

    async def month_counter(self, project: str, when: float | None = None) -> dict[str, Any]:
        key = f"{project}/m/{month_key(time.time() if when is None else when)}"
        value, _ = await self._load(NS_USAGE, key)
        return value or {}

    async def remaining(self, project: str) -> int | None:
        """Budget tokens not yet used or reserved this month (``None``: no token budget)."""
        record = await self.project(project)
        if record is None or record.budget_tokens is None:
            return None
        counter = await self.month_counter(project)
        used = int(counter.get("tokens", 0)) + int(counter.get("reserved_tokens", 0))
        return max(0, record.budget_tokens - used)

    # -- the per-project worker -----------------------------------------------------------

    async def admit(self, ticket: Ticket) -> Admission:
        """Reserve budget and count the rate limit, atomically with ``ticket.writes``;
        ``AdmissionRefused`` otherwise."""
        result: Admission = await self._submit(ticket.project, _Op("admit", self._future(), ticket))
        return result

    async def settle(self, settlement: Settlement) -> None:
        await self._submit(settlement.project, _Op("settle", self._future(), settlement=settlement))

    async def flush(self, project: str) -> None:
        """Wait until every admission and settlement submitted so far is committed."""
        await self._submit(project, _Op("barrier", self._future()))

    def unsettled_write(self, settlement: Settlement) -> KvWrite:
        """The marker to commit with a generation's terminal record."""
        return KvWrite(NS_UNSETTLED, settlement.generation, settlement.to_json())

    async def recover(self) -> int:
        """Settle what a crash left between a terminal record and its settlement."""
        items = await self._store.kv_scan(NS_UNSETTLED)
        for _, item in items:
            await self.settle(Settlement.from_json(item.value))
        return len(items)

    async def aclose(self) -> None:
        for queue in list(self._queues.values()):
            if queue.task is not None:
                with contextlib.suppress(Exception):
                    await queue.task

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, project: str, op: _Op) -> Any:
        queue = self._queues.get(project)
        if queue is None:
            queue = self._queues[project] = _Queue()
        queue.ops.append(op)
        if queue.task is None:
            queue.task = asyncio.create_task(self._drain(project, queue), name=f"ledger:{project}")
        return await op.future

    async def _drain(self, project: str, queue: _Queue) -> None:
        try:
            while queue.ops:
                ops, queue.ops = queue.ops, []
                try:
                    await self._commit(project, ops)
                except Exception as exc:
                    for op in ops:
                        if not op.future.done():
                            op.future.set_exception(exc)
        finally:
            queue.task = None
            if queue.ops:  # arrived while the last commit finished
                queue.task = asyncio.create_task(self._drain(project, queue))
            elif self._queues.get(project) is queue:
                del self._queues[project]

    async def _load(self, namespace: str, key: str) -> tuple[dict[str, Any] | None, int]:
        cached = self._cache.get((namespace, key))
        if cached is not None:
            return cached
        item = await self._store.kv_get(namespace, key)
        loaded = _ABSENT if item is None else (orjson.loads(item.value), item.version)
        self._cache[(namespace, key)] = loaded
        return loaded

    async def _commit(self, project: str, ops: list[_Op]) -> None:
        for _ in range(_MAX_ATTEMPTS):
            record = await self.project(project) or ProjectRecord()
            now = time.time()
            draft = _Draft(self._load)
            outcomes: list[tuple[_Op, Any]] = []
            extra: list[tuple[_Op, KvWrite]] = []
            extra_writes: list[KvWrite] = []
            touched = draft.touched
            for op in ops:
                if op.kind == "admit":
                    assert op.ticket is not None
                    outcome = await self._decide(op.ticket, record, now, draft)
                    outcomes.append((op, outcome))
                    if isinstance(outcome, Admission) and op.ticket.writes_for is not None:
                        for write in op.ticket.writes_for(outcome):
                            extra.append((op, write))
                            extra_writes.append(write)
                elif op.kind == "settle":
                    assert op.settlement is not None
                    await self._apply(op.settlement, draft)
                    extra_writes.append(KvWrite(NS_UNSETTLED, op.settlement.generation, None))
                    outcomes.append((op, None))
                else:
                    outcomes.append((op, None))
            writes = [
                KvWrite(
                    ns,
                    key,
                    orjson.dumps(draft.values[(ns, key)]),
                    expect_version=draft.versions[(ns, key)],
                )
                for ns, key in sorted(touched)
            ]
            writes += extra_writes
            try:
                new_versions = await self._store.kv_write(writes) if writes else []
            except KvConflict as exc:
                owner = next(
                    (op for op, w in extra if (w.namespace, w.key) == (exc.namespace, exc.key)),
                    None,
                )
                if owner is not None and not owner.future.done():
                    owner.future.set_exception(
                        AdmissionRefused("conflict", str(exc), namespace=exc.namespace, key=exc.key)
                    )
                    ops = [op for op in ops if op is not owner]
                for slot in touched:
                    self._cache.pop(slot, None)
                continue
            for write, version in zip(writes, new_versions, strict=True):
                slot = (write.namespace, write.key)
                if slot in touched:
                    self._cache[slot] = (draft.values[slot], version)
            for op, outcome in outcomes:
                if op.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    op.future.set_exception(outcome)
                else:
                    op.future.set_result(outcome)
            return
        raise StorageError(f"ledger of {project!r}: counters kept changing under us")

    async def _decide(
        self, ticket: Ticket, record: ProjectRecord, now: float, draft: _Draft
    ) -> Admission | AdmissionRefused:
        rate_slot = (NS_RATE, ticket.token_id)
        rate_data = await draft.value(*rate_slot)
        window = RateWindow.from_json(rate_data)
        month = month_key(now)
        counter_slot = (NS_USAGE, f"{ticket.project}/m/{month}")
        counter = await draft.value(*counter_slot)
        max_tokens = ticket.max_tokens
        price = self._prices.price(ticket.tier, ticket.model_id)
        if record.budget_tokens is not None:
            left = (
                record.budget_tokens - counter.get("tokens", 0) - counter.get("reserved_tokens", 0)
            )
            max_tokens = min(max_tokens, left - ticket.prompt_tokens)
        if record.budget_usd is not None and price.output > 0:
            left_usd = (
                record.budget_usd - counter.get("cost", 0.0) - counter.get("reserved_usd", 0.0)
            )
            affordable = (left_usd - price.cost(ticket.prompt_tokens, 0)) * 1000 / price.output
            max_tokens = min(max_tokens, int(affordable))
        if max_tokens < 1:
            return AdmissionRefused("budget", f"Budget exceeded for project {ticket.project}")
        reserve_tokens = ticket.prompt_tokens + max_tokens
        decision = window.check(ticket.limits, reserve_tokens, now)
        if not decision.allowed:
            return AdmissionRefused(
                "rate", "Rate limit exceeded. Please try again later.", decision=decision
            )
        reserve_usd = price.cost(ticket.prompt_tokens, max_tokens)
        rate_data.clear()
        rate_data.update(window.to_json())
        counter["reserved_tokens"] = counter.get("reserved_tokens", 0) + reserve_tokens
        counter["reserved_usd"] = round(counter.get("reserved_usd", 0.0) + reserve_usd, 10)
        draft.touched.update((rate_slot, counter_slot))
        return Admission(max_tokens, reserve_tokens, reserve_usd, month, decision.headers)

    async def _apply(self, s: Settlement, draft: _Draft) -> None:
        counter_slot = (NS_USAGE, f"{s.project}/m/{s.month}")
        counter = await draft.value(*counter_slot)
        counter["reserved_tokens"] = max(0, counter.get("reserved_tokens", 0) - s.reserve_tokens)
        counter["reserved_usd"] = max(
            0.0, round(counter.get("reserved_usd", 0.0) - s.reserve_usd, 10)
        )
        total = s.input_tokens + s.output_tokens
        counter["tokens"] = counter.get("tokens", 0) + total
        counter["cost"] = round(counter.get("cost", 0.0) + s.cost, 10)
        counter["requests"] = counter.get("requests", 0) + 1
        hour_slot = (NS_USAGE, f"{s.project}/h/{hour_key(s.finished)}")
        bucket = await draft.value(*hour_slot)
        by_model = bucket.setdefault("by_model", {})
        entry = by_model.setdefault(
            s.tier, {"input_tokens": 0, "output_tokens": 0, "tokens": 0, "cost": 0.0, "requests": 0}
        )
        entry["input_tokens"] += s.input_tokens
        entry["output_tokens"] += s.output_tokens
        entry["tokens"] += total
        entry["cost"] = round(entry["cost"] + s.cost, 10)
        entry["requests"] += 1
        draft.touched.update((counter_slot, hour_slot))

    # -- usage ----------------------------------------------------------------------------

    async def usage(self, project: str, period: str, now: float | None = None) -> dict[str, Any]:
        """The seed's ``UsageStats`` JSON for ``project`` over ``period``."""
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        await self.flush(project)
        now = time.time() if now is None else now
        end = datetime.fromtimestamp(now, UTC)
        if period == "month":
            start = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        else:
            start = end - timedelta(days=7 if period == "week" else 1)
        first = start.strftime("%Y-%m-%dT%H")
        by_model: dict[str, dict[str, Any]] = {}
        months = {start.strftime("%Y-%m"), end.strftime("%Y-%m")}
        for month in sorted(months):
            for key, item in await self._store.kv_scan(NS_USAGE, f"{project}/h/{month}"):
                if key.rsplit("/", 1)[1] < first:
                    continue
                for model, entry in orjson.loads(item.value).get("by_model", {}).items():
                    into = by_model.setdefault(
                        model,
                        {
                            "tokens": 0,
                            "cost": 0.0,
                            "input_tokens": 0,
                            "output_tokens": 0,
                            "requests": 0,
                        },
                    )
                    for name, amount in entry.items():
                        into[name] = into.get(name, 0) + amount
        for entry in by_model.values():
            entry["cost"] = round(entry["cost"], 8)
        record = await self.project(project)
        limit = record.budget_tokens if record else None
        remaining = None
        if limit is not None:
            counter = await self._store.kv_get(NS_USAGE, f"{project}/m/{month_key(now)}")
            used = int(orjson.loads(counter.value).get("tokens", 0)) if counter else 0
            remaining = max(0, limit - used)
        return {
            "project_id": project,
            "period": period,
            "total_tokens": sum(e["tokens"] for e in by_model.values()),
            "total_cost": round(sum(e["cost"] for e in by_model.values()), 8),
            "by_model": by_model,
            "limit": limit,
            "remaining": remaining,
            "budget_usd": record.budget_usd if record else None,
        }
