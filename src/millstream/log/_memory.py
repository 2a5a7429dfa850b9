"""``MemoryStore``: the whole log in Python lists. No disk, nothing survives a restart.

It is the reference for the store contract (the shared suite runs against it first) and the
``--memory`` mode of ``millstream serve``. Beside each stream's messages it keeps their running
byte total, so a read finds where ``max_bytes`` ends with one ``bisect`` and returns a list
slice: no Python loop over messages.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate, count, islice

from ._create import plan_create
from ._errors import InvalidRequest, StreamGone, StreamNotFound
from ._model import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    ReadResult,
    StreamInfo,
)
from ._rules import StreamState, apply_append, is_expired, plan_append
from ._store import DEFAULT_MAX_READ_BYTES, Store

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    description = "memory (nothing survives a restart)"

    def __init__(self) -> None:
        super().__init__()
        self._states: dict[str, StreamState] = {}
        self._messages: dict[int, list[bytes]] = {}  # stream_id -> own messages from fork_base on
        #: stream_id -> running byte totals of its own messages: ``ends[i]`` is the size of
        #: messages ``[0, i)``, so ``ends[0] == 0`` and ``len(ends) == len(messages) + 1``.
        self._ends: dict[int, array[int]] = {}
        self._ids = count(1)

    # -- lookup -------------------------------------------------------------------------

    def _live(self, path: str, now: float | None = None) -> StreamState:
        state = self._states.get(path)
        if state is None:
            raise StreamNotFound(f"no stream at {path!r}")
        if state.soft_deleted:
            raise StreamGone(f"stream {path!r} was deleted")
        if is_expired(state, time.time() if now is None else now):
            self._drop(state)
            raise StreamNotFound(f"no stream at {path!r}")
        return state

    def _payload(self, state: StreamState, position: int) -> bytes:
        while position < state.fork_base:
            assert state.fork is not None
            state = self._states[state.fork.source]
        return self._messages[state.stream_id][position - state.fork_base]

    def _collect(
        self, state: StreamState, start: int, end: int, budget: int, out: list[bytes]
    ) -> tuple[int, int]:
        """Add messages [start, end) to ``out`` until ``budget`` bytes are reached (at least one
        message in all, the one crossing the budget included); return (next position, bytes)."""
        used = 0
        if start < state.fork_base:
            assert state.fork is not None
            source = self._states[state.fork.source]
            below = min(end, state.fork_base)
            start, used = self._collect(source, start, below, budget, out)
            if start < below or used >= budget:
                return start, used
        if start >= end or (used >= budget and out):
            return start, used
        base = state.fork_base
        first, last = start - base, end - base
        ends = self._ends[state.stream_id]
        # The first message k whose preceding total reaches the budget is not taken; at least
        # one message is (lo = first + 1).
        stop = bisect_left(ends, ends[first] + budget - used, first + 1, last)
        out.extend(self._messages[state.stream_id][first:stop])
        return stop + base, used + ends[stop] - ends[first]

    # -- Store --------------------------------------------------------------------------

    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        now = time.time()
        plan = plan_create(
            path,
            request,
            now,
            get=self._states.get,
            live=lambda p: self._live(p, now),
            payload_at=self._payload,
            drop=self._drop,
        )
        if plan.existing is not None:
            return CreateResult(created=False, info=plan.existing.info())
        state = StreamState(
            path=path, stream_id=next(self._ids), config=plan.config, last_access=now
        )
        state.fork, state.fork_base = plan.fork, plan.fork_base
        own: list[bytes] = [plan.partial] if plan.partial is not None else []
        own.extend(request.messages)
        self._messages[state.stream_id] = own
        self._ends[state.stream_id] = _running_totals(own)
        state.tail = plan.fork_base + len(own)
        state.closed = request.closed
        if plan.source is not None:
            plan.source.refcount += 1
        self._states[path] = state
        self.notifier.notify(path)  # subscriptions discover new streams (PROTOCOL.md §6.2)
        return CreateResult(created=True, info=state.info())

    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        now = time.time()
        state = self._live(path, now)
        plan = plan_append(state, request)
        if plan.outcome == "appended":
            self._messages[state.stream_id].extend(request.messages)
            _extend_totals(self._ends[state.stream_id], request.messages)
        result = apply_append(state, request, plan, now)
        if plan.outcome != "duplicate":
            self.notifier.notify(path)
        return result

    async def head(self, path: str) -> StreamInfo:
        return self._live(path).info()

    async def read(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> ReadResult:
        now = time.time()
        state = self._live(path, now)
        if start > state.tail or start < 0:
            raise InvalidRequest("offset is beyond the stream's tail")
        state.last_access = now
        out: list[bytes] = []
        end = start
        if start < state.tail:
            end, _ = self._collect(state, start, state.tail, max_bytes, out)
        return ReadResult(out, start, end, state.tail, state.closed, state.stream_id)

    async def delete(self, path: str) -> None:
        state = self._live(path)
        self._drop(state)
        self.notifier.notify(path)

    def _drop(self, state: StreamState) -> None:
        """Remove ``state`` now, or soft-delete it while forks reference it; cascade upward."""
        if state.refcount > 0:
            state.soft_deleted = True
            return
        self._states.pop(state.path, None)
        self._messages.pop(state.stream_id, None)
        self._ends.pop(state.stream_id, None)
        if state.fork is not None:
            source = self._states.get(state.fork.source)
            if source is not None:
                source.refcount -= 1
                if source.soft_deleted and source.refcount == 0:
                    self._drop(source)

    async def list_paths(self, prefix: str = "") -> list[str]:
        now = time.time()
        return sorted(
            p
            for p, s in self._states.items()
            if p.startswith(prefix) and not s.soft_deleted and not is_expired(s, now)
        )

    async def reclaim_expired(self, now: float | None = None) -> int:
        moment = time.time() if now is None else now
        expired = [s for s in self._states.values() if not s.soft_deleted and is_expired(s, moment)]
        for state in expired:
            self._drop(state)
            self.notifier.notify(state.path)
        return len(expired)


def _running_totals(messages: list[bytes]) -> array[int]:
    """``[0, len(m0), len(m0) + len(m1), ...]``: one entry more than there are messages."""
    return array("q", accumulate(map(len, messages), initial=0))


def _extend_totals(ends: array[int], messages: Sequence[bytes]) -> None:
    if len(messages) == 1:
        ends.append(ends[-1] + len(messages[0]))
    else:
        ends.extend(islice(accumulate(map(len, messages), initial=ends[-1]), 1, None))
