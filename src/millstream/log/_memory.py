"""``MemoryStore``: the whole log in Python lists. No disk, nothing survives a restart.

It is the reference for the store contract (the shared suite runs against it first) and the
``--memory`` mode of ``millstream serve``.
"""

from __future__ import annotations

import time
from itertools import count

from ._errors import InvalidRequest, StreamConflict, StreamGone, StreamNotFound
from ._model import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    ForkSpec,
    ReadResult,
    StreamInfo,
    is_json_content_type,
)
from ._rules import (
    StreamState,
    apply_append,
    check_existing,
    fork_config,
    is_expired,
    plan_append,
)
from ._store import DEFAULT_MAX_READ_BYTES, Store

__all__ = ["MemoryStore", "resolve_fork"]


def resolve_fork(
    source: StreamState, spec: ForkSpec, source_payload_at: bytes | None
) -> tuple[ForkSpec, int, bytes | None]:
    """Validate a fork against its source; return (resolved spec, fork base, partial first message).

    ``source_payload_at`` is the source's message at the fork offset (needed for a byte
    sub-offset), or ``None`` if the offset is the source's tail.
    """
    position = source.tail if spec.offset is None else spec.offset
    if position > source.tail:
        raise InvalidRequest("Stream-Fork-Offset is beyond the source stream's tail")
    resolved = ForkSpec(spec.source, position, spec.sub_offset)
    if spec.sub_offset == 0:
        return resolved, position, None
    if is_json_content_type(source.config.content_type):
        if position + spec.sub_offset > source.tail:
            raise InvalidRequest("Stream-Fork-Sub-Offset is past the source's last message")
        return resolved, position + spec.sub_offset, None
    if source_payload_at is None or spec.sub_offset > len(source_payload_at):
        raise InvalidRequest("Stream-Fork-Sub-Offset is past the end of the message at that offset")
    return resolved, position, source_payload_at[: spec.sub_offset]


class MemoryStore(Store):
    description = "memory (nothing survives a restart)"

    def __init__(self) -> None:
        super().__init__()
        self._states: dict[str, StreamState] = {}
        self._messages: dict[int, list[bytes]] = {}  # stream_id -> own messages from fork_base on
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
    ) -> int:
        """Append messages [start, end) to ``out`` until ``budget`` bytes; return next position."""
        if start < state.fork_base:
            assert state.fork is not None
            source = self._states[state.fork.source]
            start = self._collect(source, start, min(end, state.fork_base), budget, out)
            budget -= sum(len(p) for p in out)
            if start < min(end, state.fork_base) or (budget <= 0 and out):
                return start
        own = self._messages[state.stream_id]
        position = start
        while position < end and (budget > 0 or not out):
            payload = own[position - state.fork_base]
            out.append(payload)
            budget -= len(payload)
            position += 1
        return position

    # -- Store --------------------------------------------------------------------------

    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        now = time.time()
        config = request.config
        resolved: ForkSpec | None = None
        source: StreamState | None = None
        base, partial = 0, None
        if request.fork is not None:
            try:
                source = self._live(request.fork.source, now)
            except StreamGone as exc:
                raise StreamConflict("the fork source was deleted") from exc
            requested_ct = request.config.content_type or None
            config = fork_config(source.config, request.config, requested_ct)
            offset = source.tail if request.fork.offset is None else request.fork.offset
            at = self._payload(source, offset) if offset < source.tail else None
            resolved, base, partial = resolve_fork(source, request.fork, at)
        existing = self._states.get(path)
        if existing is not None and (existing.soft_deleted or not is_expired(existing, now)):
            check_existing(
                existing, CreateRequest(config, request.messages, request.closed), resolved
            )
            return CreateResult(created=False, info=existing.info())
        if existing is not None:
            self._drop(existing)
            if existing.soft_deleted:
                raise StreamConflict("an expired stream still referenced by forks holds this path")
        state = StreamState(path=path, stream_id=next(self._ids), config=config, last_access=now)
        state.fork, state.fork_base = resolved, base
        own: list[bytes] = [partial] if partial is not None else []
        own.extend(request.messages)
        self._messages[state.stream_id] = own
        state.tail = base + len(own)
        state.closed = request.closed
        if source is not None:
            source.refcount += 1
        self._states[path] = state
        self.notifier.notify(path)  # subscriptions discover new streams (PROTOCOL.md §6.2)
        return CreateResult(created=True, info=state.info())

    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        now = time.time()
        state = self._live(path, now)
        plan = plan_append(state, request)
        if plan.outcome == "appended":
            self._messages[state.stream_id].extend(request.messages)
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
        end = (
            self._collect(state, start, state.tail, max_bytes, out) if start < state.tail else start
        )
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
