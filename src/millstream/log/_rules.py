"""The rules of the log, written once for every store and both front doors.

Stores keep a ``StreamState`` per live stream in memory and ask these pure functions what a
request means before they touch storage. A store applies a plan by writing its messages and then
calling ``apply_append``; a store that persists must do both in one transaction so producer
state commits atomically with the data it guards (PROTOCOL.md §5.2.1, "Atomicity").

Editing rules: every function here is pure (no I/O, no clock; callers pass ``now``), raises only
``millstream.log`` errors, and is covered by the shared store suite in ``tests/log/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ._errors import (
    ContentTypeMismatch,
    DuplicateSequence,
    InvalidRequest,
    KvConflict,
    OffsetOutOfRange,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StreamClosed,
    StreamConflict,
    StreamGone,
    StreamSeqConflict,
    UnknownProducerId,
)
from ._model import (
    AppendOutcome,
    AppendRequest,
    AppendResult,
    CreateRequest,
    ForkSpec,
    KafkaBatch,
    KvItem,
    KvWrite,
    ProducerClaim,
    ProduceResult,
    ProducerState,
    StreamConfig,
    StreamInfo,
    normalize_content_type,
)

__all__ = [
    "KAFKA_PRODUCER_BATCHES",
    "AppendPlan",
    "KafkaProducerState",
    "KvPlan",
    "ProducePlan",
    "StreamState",
    "apply_append",
    "apply_produce",
    "check_existing",
    "deadline",
    "fork_config",
    "is_expired",
    "next_sequence",
    "plan_append",
    "plan_kv",
    "plan_produce",
    "plan_truncate",
]

#: Kafka keeps the metadata of the last 5 batches per producer and partition, matching the
#: most requests an idempotent producer may have in flight (max.in.flight.requests.per.
#: connection <= 5, KAFKA-5494); a retry of any of them is answered as a duplicate.
KAFKA_PRODUCER_BATCHES = 5
INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class KafkaProducerState:
    """What a stream remembers of one Kafka producer id (KIP-98): its epoch, the sequence of
    its last record, and ``(first_seq, last_seq, base_offset, log_append_time_ms)`` of its last
    ``KAFKA_PRODUCER_BATCHES`` batches, oldest first."""

    epoch: int
    last_seq: int
    batches: tuple[tuple[int, int, int, int], ...] = ()


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
    kafka_producers: dict[int, KafkaProducerState] = field(default_factory=dict)
    log_start: int = 0  # positions below were truncated (Kafka DeleteRecords)
    max_timestamp: int = -1  # the highest record timestamp stored so far (time lookups)
    kafka_entries: bool = False  # holds (or held) a Kafka batch: reads take the general path
    time_indexed: int = -1  # the last timestamp a store indexed (stores with a time index)
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
            log_start=self.log_start,
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


# -- Kafka idempotence (KIP-98) -----------------------------------------------------------------
#
# Per (stream, producer id) the log keeps a ``KafkaProducerState``. A batch from producer ``p``
# with epoch ``e`` and records ``[first, last]`` (sequences count records and wrap from
# INT32_MAX to 0, as in Kafka's ``DefaultRecordBatch.incrementSequence``) is decided:
#
# 1. ``p`` unknown: ``first`` must be 0, else UnknownProducerId (Kafka: UNKNOWN_PRODUCER_ID).
# 2. ``e`` below the known epoch: StaleProducerEpoch (INVALID_PRODUCER_EPOCH / fenced).
# 3. ``e`` above the known epoch (the producer was re-initialised): ``first`` must be 0, else
#    ProducerSequenceGap (OUT_OF_ORDER_SEQUENCE_NUMBER); the old epoch's batches are forgotten.
# 4. Same epoch, ``(first, last)`` equal to one of the remembered batches: a retry. Nothing is
#    written; the answer is the original base offset (Kafka answers NONE with that offset).
# 5. Same epoch, ``first`` follows the last sequence: appended.
# 6. Same epoch, ``first`` at or below the last sequence but not a remembered batch:
#    DuplicateSequence (DUPLICATE_SEQUENCE_NUMBER); above it: ProducerSequenceGap.
#
# The state is committed in the same transaction as the batch it describes.


def next_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment`` in Kafka's sequence space, which wraps to 0 after INT32_MAX."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


@dataclass(frozen=True, slots=True)
class ProducePlan:
    """What a produce will do: write the batch, or answer ``duplicate`` (base offset, append
    time) of an earlier identical one."""

    duplicate: tuple[int, int] | None
    check_producer: bool


def plan_produce(state: StreamState, batch: KafkaBatch) -> ProducePlan:
    """Decide a Kafka batch against the stream's state, raising the refusal (see above)."""
    if state.soft_deleted:
        raise StreamGone("stream was deleted")
    if state.closed:
        raise StreamClosed("stream is closed", tail=state.tail)
    if batch.record_count < 1:
        raise InvalidRequest("a record batch needs at least one record")
    pid = batch.producer_id
    if pid < 0:
        return ProducePlan(None, False)
    first = batch.base_sequence
    if first < 0:
        raise InvalidRequest("an idempotent batch needs a base sequence")
    known = state.kafka_producers.get(pid)
    if known is None:
        if first != 0:
            raise UnknownProducerId(
                f"producer {pid} is unknown here and must start at sequence 0",
                expected=0,
                received=first,
            )
        return ProducePlan(None, True)
    if batch.producer_epoch < known.epoch:
        raise StaleProducerEpoch(
            f"producer epoch {batch.producer_epoch} is fenced by epoch {known.epoch}",
            current_epoch=known.epoch,
        )
    if batch.producer_epoch > known.epoch:
        if first != 0:
            raise ProducerSequenceGap(
                "a new producer epoch must start at sequence 0", expected=0, received=first
            )
        return ProducePlan(None, True)
    last = next_sequence(first, batch.record_count - 1)
    for b_first, b_last, base_offset, append_time in known.batches:
        if (b_first, b_last) == (first, last):
            return ProducePlan((base_offset, append_time), True)
    expected = next_sequence(known.last_seq, 1)
    if first == expected:
        return ProducePlan(None, True)
    if _sequence_before(first, expected):
        raise DuplicateSequence(
            f"producer {pid} repeats sequence {first}, older than the batches the log remembers"
        )
    raise ProducerSequenceGap(
        f"producer sequence gap: expected {expected}, got {first}",
        expected=expected,
        received=first,
    )


def _sequence_before(sequence: int, expected: int) -> bool:
    """True if ``sequence`` lies in the half of the (wrapping) sequence space below
    ``expected``: a repeat rather than a jump ahead."""
    return 0 < (expected - sequence) % (INT32_MAX + 1) <= (INT32_MAX + 1) // 2


def apply_produce(
    state: StreamState, batch: KafkaBatch, plan: ProducePlan, append_time_ms: int, now: float
) -> ProduceResult:
    """Update ``state`` after the batch is stored at the old tail (or not, for a duplicate);
    ``append_time_ms`` is the LogAppendTime stamped on it (-1 for CreateTime)."""
    state.last_access = now
    if plan.duplicate is not None:
        base, stamp = plan.duplicate
        return ProduceResult(base, stamp, state.log_start, duplicate=True)
    base = state.tail
    state.tail += batch.record_count
    state.kafka_entries = True
    stamp = append_time_ms if batch.log_append_time else batch.max_timestamp_ms
    state.max_timestamp = max(state.max_timestamp, stamp)
    if plan.check_producer:
        pid = batch.producer_id
        known = state.kafka_producers.get(pid)
        last = next_sequence(batch.base_sequence, batch.record_count - 1)
        entry = (batch.base_sequence, last, base, append_time_ms)
        kept = known.batches if known is not None and known.epoch == batch.producer_epoch else ()
        state.kafka_producers[pid] = KafkaProducerState(
            batch.producer_epoch, last, (*kept, entry)[-KAFKA_PRODUCER_BATCHES:]
        )
    return ProduceResult(base, append_time_ms if batch.log_append_time else -1, state.log_start)


def plan_truncate(state: StreamState, before: int) -> int | None:
    """The new log start for Kafka DeleteRecords (``before=-1``: the tail), or ``None`` when
    ``before`` is at or below the current one; raises for a position past the tail and for a
    stream forks still read (their data would go)."""
    target = state.tail if before == -1 else before
    if target < 0 or target > state.tail:
        raise OffsetOutOfRange(
            f"offset {before} is past the tail {state.tail}",
            log_start=state.log_start,
            tail=state.tail,
        )
    if state.refcount > 0:
        raise InvalidRequest("forks still read this stream's data; it cannot be truncated")
    return target if target > state.log_start else None


# -- the key-value table ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KvPlan:
    """The outcome of a list of ``KvWrite``: each write's new version (0 for deletes and
    checks) and the resulting item per touched key (``None``: deleted)."""

    versions: list[int]
    changes: dict[tuple[str, str], KvItem | None]
    next_version: int


def plan_kv(
    writes: Sequence[KvWrite],
    current: Callable[[str, str], KvItem | None],
    next_version: int,
) -> KvPlan:
    """Check and apply ``writes`` in order against ``current`` (each expectation sees the
    earlier writes of the same call); raise ``KvConflict`` on the first failed one.

    ``next_version`` is the store-wide counter: every stored value gets a version never used
    before (a key deleted and written again does not match an old expectation: no ABA).
    """
    changes: dict[tuple[str, str], KvItem | None] = {}
    versions: list[int] = []
    for write in writes:
        if not write.namespace:
            raise InvalidRequest("a key-value write needs a namespace")
        where = (write.namespace, write.key)
        item = changes[where] if where in changes else current(*where)
        expect = write.expect_version
        if expect is not None and (
            (expect == 0 and item is not None)
            or (expect != 0 and (item is None or item.version != expect))
        ):
            found = "absent" if item is None else f"at version {item.version}"
            raise KvConflict(
                f"{write.namespace}/{write.key} is {found}, expected "
                + ("absent" if expect == 0 else f"version {expect}"),
                namespace=write.namespace,
                key=write.key,
            )
        if write.check_only:
            versions.append(0)
            continue
        if write.value is None:
            changes[where] = None
            versions.append(0)
            continue
        changes[where] = KvItem(bytes(write.value), next_version)
        versions.append(next_version)
        next_version += 1
    return KvPlan(versions, changes, next_version)
