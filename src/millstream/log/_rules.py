"""The rules of the log, written once for every store and both front doors.

Stores keep a ``StreamState`` per live stream in memory and ask these pure functions what a
request means before they touch storage. A store applies a plan by writing its messages and then
calling ``apply_append``; a store that persists must do both in one transaction so producer
state commits atomically with the data it guards (PROTOCOL.md §5.2.1, "Atomicity").

Editing rules: every function here is pure (no I/O, no clock; callers pass ``now``), raises only
``millstream.log`` errors, and is covered by the shared store suite in ``tests/log/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import (
    ContentTypeMismatch,
    InvalidRequest,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StreamClosed,
    StreamConflict,
    StreamGone,
    StreamSeqConflict,
)
from ._model import (
    AppendOutcome,
    AppendRequest,
    AppendResult,
    CreateRequest,
    ForkSpec,
    ProducerClaim,
    ProducerState,
    StreamConfig,
    StreamInfo,
    normalize_content_type,
)

__all__ = [
    "AppendPlan",
    "StreamState",
    "apply_append",
    "check_existing",
    "deadline",
    "fork_config",
    "is_expired",
    "plan_append",
]


@dataclass(slots=True)
class StreamState:
    """Everything a store knows about one stream besides its messages."""

    path: str
    stream_id: int
    config: StreamConfig
    tail: int = 0
    closed: bool = False
    closed_by: ProducerClaim | None = None
    last_stream_seq: str | None = None
    producers: dict[str, ProducerState] = field(default_factory=dict)
    fork: ForkSpec | None = None  # as requested (offset resolved to the source position)
    fork_base: int = 0  # positions below this are read from the fork source
    refcount: int = 0  # forks whose data reaches into this stream
    soft_deleted: bool = False
    last_access: float = 0.0  # unix seconds; sliding TTL counts from here

    def info(self) -> StreamInfo:
        return StreamInfo(
            path=self.path,
            stream_id=self.stream_id,
            config=self.config,
            tail=self.tail,
            closed=self.closed,
            fork=self.fork,
        )


def deadline(state: StreamState) -> float | None:
    """Unix time after which the stream is expired, or ``None`` if it never expires."""
    config = state.config
    if config.expires_at is not None:
        return config.expires_at.timestamp()
    if config.ttl_seconds is not None:
        return state.last_access + config.ttl_seconds
    return None


def is_expired(state: StreamState, now: float) -> bool:
    limit = deadline(state)
    return limit is not None and now >= limit


def check_existing(
    state: StreamState, request: CreateRequest, resolved_fork: ForkSpec | None
) -> None:
    """Raise unless ``request`` re-creates ``state`` exactly (idempotent PUT, PROTOCOL.md §5.1)."""
    if state.soft_deleted:
        raise StreamConflict("a deleted stream still referenced by forks holds this path")
    if state.config != request.config:
        raise StreamConflict("stream exists with a different content type, TTL or expiry")
    if state.closed != request.closed:
        raise StreamConflict("stream exists with a different closure status")
    if state.fork != resolved_fork:
        raise StreamConflict("stream exists with a different fork source or offset")


def fork_config(
    source: StreamConfig, requested: StreamConfig | None, content_type: str | None
) -> StreamConfig:
    """The fork's configuration from its source's and the request's (PROTOCOL.md §4.2 table)."""
    if content_type is not None and normalize_content_type(content_type) != normalize_content_type(
        source.content_type
    ):
        raise StreamConflict("a fork's content type must match its source's")
    ttl = requested.ttl_seconds if requested else None
    expires_at = requested.expires_at if requested else None
    if ttl is None and expires_at is None:
        ttl, expires_at = source.ttl_seconds, source.expires_at
    return StreamConfig(content_type=source.content_type, ttl_seconds=ttl, expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """What an append will do: write ``request.messages`` (outcome ``appended``) or nothing."""

    outcome: AppendOutcome
    close: bool
    producer: ProducerClaim | None
    result_seq: int | None  # highest accepted seq to report back


def _check_producer(state: StreamState, claim: ProducerClaim) -> tuple[bool, int]:
    """Return ``(is_duplicate, highest_accepted_seq)`` or raise (PROTOCOL.md §5.2.1)."""
    known = state.producers.get(claim.producer_id)
    if known is None or claim.epoch > known.epoch:
        if claim.seq != 0:
            if known is None and claim.epoch == 0:
                raise ProducerSequenceGap(
                    "a new producer must start at seq 0", expected=0, received=claim.seq
                )
            raise InvalidRequest("a new producer epoch must start at Producer-Seq 0")
        return False, 0
    if claim.epoch < known.epoch:
        raise StaleProducerEpoch(
            f"producer epoch {claim.epoch} is fenced by epoch {known.epoch}",
            current_epoch=known.epoch,
        )
    if claim.seq <= known.last_seq:
        return True, known.last_seq
    if claim.seq == known.last_seq + 1:
        return False, claim.seq
    raise ProducerSequenceGap(
        f"producer sequence gap: expected {known.last_seq + 1}, got {claim.seq}",
        expected=known.last_seq + 1,
        received=claim.seq,
    )


def plan_append(state: StreamState, request: AppendRequest) -> AppendPlan:
    """Decide an append against the stream's state, raising the protocol's error if refused.

    Precedence follows PROTOCOL.md §5.2: closed first, then content type, then sequences.
    """
    if state.soft_deleted:
        raise StreamGone("stream was deleted")
    claim = request.producer
    if state.closed:
        if claim is not None and state.closed_by == claim:
            return AppendPlan("duplicate", True, claim, claim.seq)
        if not request.messages:
            return AppendPlan("closed", True, None, None)
        raise StreamClosed("stream is closed", tail=state.tail)
    if not request.messages and not request.close:
        raise InvalidRequest("an append needs a body unless it closes the stream")
    if (
        request.messages
        and request.content_type is not None
        and normalize_content_type(request.content_type)
        != normalize_content_type(state.config.content_type)
    ):
        raise ContentTypeMismatch(
            f"stream content type is {state.config.content_type}, "
            f"request sent {request.content_type}"
        )
    result_seq: int | None = None
    if claim is not None:
        duplicate, result_seq = _check_producer(state, claim)
        if duplicate:
            return AppendPlan("duplicate", False, claim, result_seq)
    last = state.last_stream_seq
    if request.stream_seq is not None and last is not None and request.stream_seq <= last:
        raise StreamSeqConflict(f"Stream-Seq {request.stream_seq!r} is not above {last!r}")
    outcome: AppendOutcome = "appended" if request.messages else "closed"
    return AppendPlan(outcome, request.close, claim, result_seq)


def apply_append(
    state: StreamState, request: AppendRequest, plan: AppendPlan, now: float
) -> AppendResult:
    """Update ``state`` after the plan's messages are stored; return the answer to give."""
    if plan.outcome != "duplicate":
        state.tail += len(request.messages)
        if request.stream_seq is not None and request.messages:
            state.last_stream_seq = request.stream_seq
        if plan.producer is not None:
            state.producers[plan.producer.producer_id] = ProducerState(
                plan.producer.epoch, plan.producer.seq
            )
        if plan.close and not state.closed:
            state.closed = True
            state.closed_by = plan.producer
    state.last_access = now
    claim = plan.producer
    return AppendResult(
        outcome=plan.outcome,
        tail=state.tail,
        closed=state.closed,
        producer_epoch=claim.epoch if claim else None,
        producer_seq=plan.result_seq,
    )
