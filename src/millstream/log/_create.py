"""What a create (or fork) means, decided once for every store.

Both ``MemoryStore.create`` and the SQLite writer's batch ask ``plan_create`` and then only
store what it decided. The store passes in how to look things up in its own state (so a batch
sees its own earlier jobs) and how to drop an expired stream; the rule itself lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._errors import InvalidRequest, OffsetOutOfRange, StreamConflict, StreamGone
from ._model import CreateRequest, ForkSpec, StreamConfig, is_json_content_type
from ._rules import StreamState, check_existing, fork_config, is_expired

__all__ = ["CreatePlan", "plan_create", "resolve_fork"]


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
    if position < source.log_start:
        raise OffsetOutOfRange(
            "Stream-Fork-Offset is below the source stream's log start",
            log_start=source.log_start,
            tail=source.tail,
        )
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


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """The decision: ``existing`` is set when the request re-creates it (idempotent, no write);
    otherwise a new stream with ``config`` whose first own message is ``partial`` (if any)."""

    existing: StreamState | None
    config: StreamConfig
    source: StreamState | None = None
    fork: ForkSpec | None = None
    fork_base: int = 0
    partial: bytes | None = None


def plan_create(
    path: str,
    request: CreateRequest,
    now: float,
    *,
    get: Callable[[str], StreamState | None],
    live: Callable[[str], StreamState],
    payload_at: Callable[[StreamState, int], bytes | None],
    drop: Callable[[StreamState], None],
) -> CreatePlan:
    """Decide ``request`` at ``path`` (PROTOCOL.md §5.1, forks §4.2), raising if refused.

    ``get`` returns a path's state in any lifecycle stage; ``live`` a visible one or raises
    ``StreamNotFound``/``StreamGone`` (dropping it if expired); ``payload_at`` a stream's
    message at a position; ``drop`` removes (or soft-deletes) an expired stream.
    """
    config = request.config
    resolved: ForkSpec | None = None
    source: StreamState | None = None
    base, partial = 0, None
    if request.fork is not None:
        try:
            source = live(request.fork.source)
        except StreamGone as exc:
            raise StreamConflict("the fork source was deleted") from exc
        config = fork_config(source.config, request.config, request.config.content_type or None)
        offset = source.tail if request.fork.offset is None else request.fork.offset
        at = None
        if (
            request.fork.sub_offset
            and 0 <= offset < source.tail
            and not is_json_content_type(source.config.content_type)
        ):
            at = payload_at(source, offset)
        resolved, base, partial = resolve_fork(source, request.fork, at)
    existing = get(path)
    if existing is not None and (existing.soft_deleted or not is_expired(existing, now)):
        check_existing(existing, CreateRequest(config, request.messages, request.closed), resolved)
        return CreatePlan(existing, config)
    if existing is not None:
        drop(existing)
        if existing.soft_deleted:
            raise StreamConflict("an expired stream still referenced by forks holds this path")
    return CreatePlan(None, config, source, resolved, base, partial)
