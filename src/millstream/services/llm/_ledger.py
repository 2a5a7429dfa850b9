"""Budgets, usage and rate limits of projects, kept in the store's key-value table.

Records (namespaces ``llm.*``):

- ``llm.projects/<project>``: ``{"budget_tokens", "budget_usd", "created"}`` (``null``: none);
- ``llm.usage/<project>/m/<YYYY-MM>``: the month's counter ``{"tokens", "cost", "requests",
  "reserved_tokens", "reserved_usd"}``, what budgets are checked against;
- ``llm.usage/<project>/h/<YYYY-MM-DDTHH>``: an hour's usage by model, what ``/v1/usage`` sums
  over a month (since the 1st, UTC), a week (168 hours) or a day (24 hours);
- ``llm.rate/<token id>``: the key's rate window (``_ratelimit``);
- ``llm.unsettled/<generation>``: a finished generation whose usage is not yet in the counters.

How it stays exact under concurrency, without a disk write before the provider call: each
project has a book of its counters in memory (committed values plus every change decided since).
An admission is decided at once against that book, atomically with every other decision of this
process (the event loop runs one at a time), and changes it; one worker per project then commits
the changes decided meanwhile in one ``kv_write``, compare-and-set on each counter, together with
the records the caller asked to commit with each admission (in-flight marker, idempotency key).
``Admission.durable`` resolves when that commit is on disk; the gateway starts the provider call
at once and answers nothing before it resolves. A conflict (another node, or a process sharing
the file, changed a counter) reloads the book from the store and decides every uncommitted
admission again, exactly as first decided or not at all: one that no longer fits fails
``refused`` and the gateway cancels its call, so no two admissions ever spend the same tokens.
An admission reserves its prompt estimate plus its output limit, clamped to what the budget has
left; a settlement moves that reservation to the actual usage. A generation's terminal record
commits with its ``llm.unsettled`` marker and the settlement deletes it with the counter change,
so a crash in between is settled at the next start (``recover``), never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
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
    #: Resolves once the reservation and the records committed with it are on disk.
    durable: asyncio.Future[None] = field(compare=False, repr=False)


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


_Slot = tuple[str, str]


@dataclass(slots=True, eq=False)
class _Op:
    """A decided admission or settlement waiting to be committed."""

    kind: str  # "admit" or "settle"
    durable: asyncio.Future[None]
    now: float
    ticket: Ticket | None = None
    admission: Admission | None = None
    settlement: Settlement | None = None
    extra: list[KvWrite] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Book:
    """One project's counters as this process sees them: the committed value of each slot plus
    every decided change (``working``), the version each was committed at (0: absent), which
    slots changed since the last commit, and the ops those changes belong to."""

    working: dict[_Slot, dict[str, Any]] = field(default_factory=dict)
    versions: dict[_Slot, int] = field(default_factory=dict)
    dirty: set[_Slot] = field(default_factory=set)
    pending: list[_Op] = field(default_factory=list)
    committing: list[_Op] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None


class Ledger:
    """See the module docstring."""

    def __init__(self, store: Store, prices: PriceTable) -> None:
        self._store = store
        self._prices = prices
        self._books: dict[str, _Book] = {}
        #: settled usage since start by (project, tier): input and output tokens, cost, count
        self.settled: dict[tuple[str, str], list[float]] = {}

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
        """The month's counter as this process sees it (decided changes included)."""
        slot = (NS_USAGE, f"{project}/m/{month_key(time.time() if when is None else when)}")
        book = self._book(project)
        async with book.lock:
            await self._ensure(book, [slot])
            return dict(book.working[slot])

    async def remaining(self, project: str) -> int | None:
        """Budget tokens not yet used or reserved this month (``None``: no token budget)."""
        record = await self.project(project)
        if record is None or record.budget_tokens is None:
            return None
        counter = await self.month_counter(project)
        used = int(counter.get("tokens", 0)) + int(counter.get("reserved_tokens", 0))
        return max(0, record.budget_tokens - used)

    # -- admissions and settlements ---------------------------------------------------------

    async def admit(self, ticket: Ticket) -> Admission:
        """Decide ``ticket`` now, against every admission and settlement this process decided
        before it; ``AdmissionRefused`` if it does not fit. The reservation and
        ``ticket.writes_for``'s records commit in the background: ``Admission.durable``
        resolves once they are on disk, or fails (``AdmissionRefused`` when another process
        spent the budget first, ``LogError``) and then nothing of it was committed."""
        book = self._book(ticket.project)
        async with book.lock:
            record = await self.project(ticket.project) or ProjectRecord()
            now = time.time()
            await self._ensure(book, self._admit_slots(ticket, now))
            outcome = self._decide(ticket, record, now, book, None)
            if isinstance(outcome, AdmissionRefused):
                raise outcome
            op = _Op("admit", outcome.durable, now, ticket=ticket, admission=outcome)
            if ticket.writes_for is not None:
                op.extra = ticket.writes_for(outcome)
            self._enqueue(ticket.project, book, op)
        return outcome

    async def settle(self, settlement: Settlement) -> None:
        """Move a generation's reservation to its actual usage; returns once committed."""
        book = self._book(settlement.project)
        async with book.lock:
            op = _Op("settle", self._future(), time.time(), settlement=settlement)
            op.extra = [KvWrite(NS_UNSETTLED, settlement.generation, None)]
            await self._ensure(book, self._settle_slots(settlement))
            self._apply(settlement, book)
            self._enqueue(settlement.project, book, op)
        await op.durable
        totals = self.settled.setdefault((settlement.project, settlement.tier), [0, 0, 0.0, 0])
        totals[0] += settlement.input_tokens
        totals[1] += settlement.output_tokens
        totals[2] += settlement.cost
        totals[3] += 1

    async def flush(self, project: str) -> None:
        """Wait until every admission and settlement decided so far is committed (or failed)."""
        book = self._books.get(project)
        if book is not None:
            waiting = [op.durable for op in (*book.committing, *book.pending)]
            await asyncio.gather(*waiting, return_exceptions=True)

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
        for book in list(self._books.values()):
            if book.task is not None:
                with contextlib.suppress(Exception):
                    await book.task

    # -- the book of one project -------------------------------------------------------------

    @staticmethod
    def _future() -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _book(self, project: str) -> _Book:
        book = self._books.get(project)
        if book is None:
            book = self._books[project] = _Book()
        return book

    @staticmethod
    def _admit_slots(ticket: Ticket, now: float) -> list[_Slot]:
        return [(NS_RATE, ticket.token_id), (NS_USAGE, f"{ticket.project}/m/{month_key(now)}")]

    @staticmethod
    def _settle_slots(s: Settlement) -> list[_Slot]:
        return [
            (NS_USAGE, f"{s.project}/m/{s.month}"),
            (NS_USAGE, f"{s.project}/h/{hour_key(s.finished)}"),
        ]

    async def _ensure(self, book: _Book, slots: list[_Slot]) -> None:
        """Load the slots the book does not hold yet (the caller holds ``book.lock``)."""
        for slot in slots:
            if slot not in book.working:
                item = await self._store.kv_get(*slot)
                book.working[slot] = {} if item is None else orjson.loads(item.value)
                book.versions[slot] = 0 if item is None else item.version

    def _enqueue(self, project: str, book: _Book, op: _Op) -> None:
        book.pending.append(op)
        if book.task is None:
            book.task = asyncio.create_task(self._drain(project, book), name=f"ledger:{project}")

    async def _drain(self, project: str, book: _Book) -> None:
        """Commit what was decided, one group at a time, until nothing waits."""
        conflicts = 0
        # One loop iteration first: the provider call launched with this admission goes out
        # before the writer thread is woken (it would compete with the loop for the GIL), and
        # admissions decided in the same iteration join this commit.
        await asyncio.sleep(0)
        try:
            while book.pending:
                ops, book.pending = book.pending, []
                slots = sorted(book.dirty)
                book.dirty = set()
                writes = [
                    KvWrite(
                        *slot, orjson.dumps(book.working[slot]), expect_version=book.versions[slot]
                    )
                    for slot in slots
                ]
                for op in ops:
                    writes += op.extra
                book.committing = ops
                try:
                    versions = await self._store.kv_write(writes)
                except KvConflict as exc:
                    conflicts += 1
                    error: Exception | None = None
                    if conflicts >= _MAX_ATTEMPTS:
                        error = StorageError(
                            f"ledger of {project!r}: counters kept changing under us"
                        )
                    await self._replay(project, book, ops, exc, error)
                    continue
                except Exception as exc:
                    await self._replay(project, book, ops, None, exc)
                    continue
                finally:
                    book.committing = []
                conflicts = 0
                for slot, version in zip(slots, versions, strict=False):
                    book.versions[slot] = version
                for op in ops:
                    if not op.durable.done():
                        op.durable.set_result(None)
                self._prune(project, book)
        finally:
            book.task = None
            if book.pending:
                book.task = asyncio.create_task(self._drain(project, book))

    async def _replay(
        self,
        project: str,
        book: _Book,
        ops: list[_Op],
        conflict: KvConflict | None,
        error: Exception | None,
    ) -> None:
        """After a failed commit: fail ``ops`` with ``error`` if given, else fail the op whose
        own record conflicted (``conflict``); then rebuild the book from the store and decide
        again everything still uncommitted, in order. An admission that no longer fits as it
        was decided (another process spent the budget meanwhile) fails ``refused``."""
        async with book.lock:
            order = [*ops, *book.pending]
            if error is not None:
                for op in ops:
                    if not op.durable.done():
                        op.durable.set_exception(error)
            elif conflict is not None:
                where = (conflict.namespace, conflict.key)
                for op in ops:
                    if any((w.namespace, w.key) == where for w in op.extra):
                        op.durable.set_exception(
                            AdmissionRefused(
                                "conflict", str(conflict), namespace=where[0], key=where[1]
                            )
                        )
            book.working.clear()
            book.versions.clear()
            book.dirty.clear()
            record = await self.project(project) or ProjectRecord()
            survivors: list[_Op] = []
            for op in order:
                if op.durable.done():
                    continue
                if op.kind == "admit":
                    assert op.ticket is not None
                    await self._ensure(book, self._admit_slots(op.ticket, op.now))
                    outcome = self._decide(op.ticket, record, op.now, book, op.admission)
                    if isinstance(outcome, AdmissionRefused):
                        op.durable.set_exception(outcome)
                        continue
                else:
                    assert op.settlement is not None
                    await self._ensure(book, self._settle_slots(op.settlement))
                    self._apply(op.settlement, book)
                survivors.append(op)
            book.pending = survivors  # admit/settle wait for the lock: nothing new arrived

    def _prune(self, project: str, book: _Book) -> None:
        """Forget clean hour buckets of past hours (the store has them)."""
        current = f"{project}/h/{hour_key(time.time())}"
        for slot in [s for s in book.working if s not in book.dirty]:
            if "/h/" in slot[1] and slot[1] < current:
                del book.working[slot]
                del book.versions[slot]

    def _decide(
        self,
        ticket: Ticket,
        record: ProjectRecord,
        now: float,
        book: _Book,
        fixed: Admission | None,
    ) -> Admission | AdmissionRefused:
        """Admit ``ticket`` into ``book`` (changing it) or refuse; ``fixed``: admit exactly
        this earlier decision or refuse."""
        rate_slot = (NS_RATE, ticket.token_id)
        rate_data = book.working[rate_slot]
        window = RateWindow.from_json(rate_data)
        month = month_key(now)
        counter_slot = (NS_USAGE, f"{ticket.project}/m/{month}")
        counter = book.working[counter_slot]
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
        if fixed is not None:
            if max_tokens < fixed.max_tokens:
                return AdmissionRefused("budget", f"Budget exceeded for project {ticket.project}")
            max_tokens = fixed.max_tokens
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
        book.dirty.update((rate_slot, counter_slot))
        durable = fixed.durable if fixed is not None else self._future()
        return Admission(max_tokens, reserve_tokens, reserve_usd, month, decision.headers, durable)

    def _apply(self, s: Settlement, book: _Book) -> None:
        counter_slot = (NS_USAGE, f"{s.project}/m/{s.month}")
        counter = book.working[counter_slot]
        counter["reserved_tokens"] = max(0, counter.get("reserved_tokens", 0) - s.reserve_tokens)
        counter["reserved_usd"] = max(
            0.0, round(counter.get("reserved_usd", 0.0) - s.reserve_usd, 10)
        )
        total = s.input_tokens + s.output_tokens
        counter["tokens"] = counter.get("tokens", 0) + total
        counter["cost"] = round(counter.get("cost", 0.0) + s.cost, 10)
        counter["requests"] = counter.get("requests", 0) + 1
        hour_slot = (NS_USAGE, f"{s.project}/h/{hour_key(s.finished)}")
        bucket = book.working[hour_slot]
        by_model = bucket.setdefault("by_model", {})
        entry = by_model.setdefault(
            s.tier, {"input_tokens": 0, "output_tokens": 0, "tokens": 0, "cost": 0.0, "requests": 0}
        )
        entry["input_tokens"] += s.input_tokens
        entry["output_tokens"] += s.output_tokens
        entry["tokens"] += total
        entry["cost"] = round(entry["cost"] + s.cost, 10)
        entry["requests"] += 1
        book.dirty.update((counter_slot, hour_slot))

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
