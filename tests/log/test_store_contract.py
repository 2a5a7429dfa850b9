"""The behavioural suite every ``Store`` must pass (memory, SQLite; PostgreSQL later).

Each test runs once per store kind through the ``store`` fixture. Protocol sections are cited
from PROTOCOL.md (the Durable Streams protocol).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from millstream.log import (
    ContentTypeMismatch,
    ForkSpec,
    InvalidRequest,
    ProducerSequenceGap,
    StaleProducerEpoch,
    Store,
    StreamClosed,
    StreamConfig,
    StreamConflict,
    StreamGone,
    StreamNotFound,
    StreamSeqConflict,
)

from .helpers import BYTES, JSON, TEXT, append, create, numbered, read_all

# -- create (§5.1) ----------------------------------------------------------------------------


async def test_create_then_head_and_read(store: Store) -> None:
    result = await create(store, "a", b"one", b"two")
    assert result.created
    assert result.info.path == "a"
    assert result.info.tail == 2
    assert not result.info.closed
    assert result.info.config == TEXT
    info = await store.head("a")
    assert info == result.info
    assert await read_all(store, "a") == [b"one", b"two"]


async def test_create_is_idempotent_with_the_same_config(store: Store) -> None:
    first = await create(store, "a", b"x")
    await append(store, "a", b"y")
    again = await create(store, "a", b"x")
    assert not again.created
    assert again.info.stream_id == first.info.stream_id
    assert again.info.tail == 2
    assert await read_all(store, "a") == [b"x", b"y"]


@pytest.mark.parametrize(
    ("config", "closed"),
    [
        (StreamConfig("application/json"), False),
        (StreamConfig("text/plain", ttl_seconds=60), False),
        (StreamConfig("text/plain", expires_at=datetime(2100, 1, 1, tzinfo=UTC)), False),
        (TEXT, True),
    ],
)
async def test_create_with_a_different_config_conflicts(
    store: Store, config: StreamConfig, closed: bool
) -> None:
    await create(store, "a")
    with pytest.raises(StreamConflict):
        await create(store, "a", config=config, closed=closed)


async def test_stream_ids_are_unique_and_never_reused(store: Store) -> None:
    a = (await create(store, "a")).info.stream_id
    b = (await create(store, "b")).info.stream_id
    await store.delete("b")
    again = (await create(store, "b")).info.stream_id
    assert len({a, b, again}) == 3


async def test_missing_stream_is_not_found_everywhere(store: Store) -> None:
    with pytest.raises(StreamNotFound):
        await store.head("nope")
    with pytest.raises(StreamNotFound):
        await store.read("nope", 0)
    with pytest.raises(StreamNotFound):
        await append(store, "nope", b"x")
    with pytest.raises(StreamNotFound):
        await store.delete("nope")


async def test_create_closed_refuses_appends(store: Store) -> None:
    result = await create(store, "a", b"final", closed=True)
    assert result.info.closed
    with pytest.raises(StreamClosed) as caught:
        await append(store, "a", b"more")
    assert caught.value.tail == 1
    read = await store.read("a", 0)
    assert read.payloads == [b"final"]
    assert read.closed


async def test_list_paths_by_prefix_sorted_live_only(store: Store) -> None:
    for path in ["b/2", "a/1", "b/1", "c", "b/3"]:
        await create(store, path)
    await store.delete("b/3")
    assert await store.list_paths() == ["a/1", "b/1", "b/2", "c"]
    assert await store.list_paths("b/") == ["b/1", "b/2"]
    assert await store.list_paths("zzz") == []


# -- append (§5.2) ----------------------------------------------------------------------------


async def test_appends_land_in_order(store: Store) -> None:
    await create(store, "a")
    first = await append(store, "a", b"1")
    assert (first.outcome, first.tail, first.closed) == ("appended", 1, False)
    second = await append(store, "a", b"2", b"3", b"4")
    assert second.tail == 4
    assert await read_all(store, "a") == [b"1", b"2", b"3", b"4"]
    assert (await store.head("a")).tail == 4


async def test_content_type_must_match_ignoring_case_and_parameters(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"ok", content_type="Text/Plain; charset=utf-8")
    with pytest.raises(ContentTypeMismatch):
        await append(store, "a", b"no", content_type="application/json")
    assert await read_all(store, "a") == [b"ok"]


async def test_empty_append_without_close_is_invalid(store: Store) -> None:
    await create(store, "a")
    with pytest.raises(InvalidRequest):
        await append(store, "a")


async def test_read_offsets_outside_the_stream_are_invalid(store: Store) -> None:
    await create(store, "a", b"x")
    with pytest.raises(InvalidRequest):
        await store.read("a", 2)
    with pytest.raises(InvalidRequest):
        await store.read("a", -1)
    at_tail = await store.read("a", 1)
    assert at_tail.payloads == []
    assert at_tail.up_to_date
    assert at_tail.next == 1


# -- closure (§4.1, §5.3) ---------------------------------------------------------------------


async def test_append_and_close_then_only_close_only_is_accepted(store: Store) -> None:
    await create(store, "a")
    result = await append(store, "a", b"last", close=True)
    assert (result.outcome, result.tail, result.closed) == ("appended", 1, True)
    with pytest.raises(StreamClosed) as caught:
        await append(store, "a", b"late")
    assert caught.value.tail == 1
    again = await append(store, "a", close=True)
    assert (again.outcome, again.tail, again.closed) == ("closed", 1, True)
    assert (await store.head("a")).closed
    assert await read_all(store, "a") == [b"last"]


async def test_close_only_keeps_the_tail(store: Store) -> None:
    await create(store, "a", b"x")
    result = await append(store, "a", close=True)
    assert (result.outcome, result.tail, result.closed) == ("closed", 1, True)


async def test_closing_producer_retry_is_a_duplicate(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"x", producer=("p", 0, 0))
    closing = await append(store, "a", b"y", producer=("p", 0, 1), close=True)
    assert closing.outcome == "appended"
    retry = await append(store, "a", b"y", producer=("p", 0, 1), close=True)
    assert (retry.outcome, retry.closed, retry.producer_seq) == ("duplicate", True, 1)
    with pytest.raises(StreamClosed):
        await append(store, "a", b"z", producer=("p", 0, 2))
    assert await read_all(store, "a") == [b"x", b"y"]


# -- Stream-Seq (§5.2) ------------------------------------------------------------------------


async def test_stream_seq_must_increase_lexicographically(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"1", stream_seq="0002")
    await append(store, "a", b"2", stream_seq="0010")
    for stale in ["0010", "0009", "0002"]:
        with pytest.raises(StreamSeqConflict):
            await append(store, "a", b"no", stream_seq=stale)
    await append(store, "a", b"3", stream_seq="1")  # "1" > "0010" as strings
    await append(store, "a", b"4")  # no Stream-Seq: not checked
    assert await read_all(store, "a") == [b"1", b"2", b"3", b"4"]


# -- idempotent producers (§5.2.1) ------------------------------------------------------------


async def test_producer_sequence_and_duplicates(store: Store) -> None:
    await create(store, "a")
    for seq in range(3):
        result = await append(store, "a", f"m{seq}".encode(), producer=("p", 0, seq))
        assert (result.outcome, result.producer_epoch, result.producer_seq) == (
            "appended",
            0,
            seq,
        )
    retry = await append(store, "a", b"m1", producer=("p", 0, 1))
    assert (retry.outcome, retry.producer_seq, retry.tail) == ("duplicate", 2, 3)
    assert await read_all(store, "a") == [b"m0", b"m1", b"m2"]


async def test_new_producer_must_start_at_zero(store: Store) -> None:
    await create(store, "a")
    with pytest.raises(ProducerSequenceGap) as caught:
        await append(store, "a", b"x", producer=("p", 0, 1))
    assert (caught.value.expected, caught.value.received) == (0, 1)
    assert await read_all(store, "a") == []


async def test_producer_gap_is_refused(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"0", producer=("p", 0, 0))
    await append(store, "a", b"1", producer=("p", 0, 1))
    with pytest.raises(ProducerSequenceGap) as caught:
        await append(store, "a", b"3", producer=("p", 0, 3))
    assert (caught.value.expected, caught.value.received) == (2, 3)
    await append(store, "a", b"2", producer=("p", 0, 2))
    assert await read_all(store, "a") == [b"0", b"1", b"2"]


async def test_epoch_bump_fences_the_old_epoch(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"old", producer=("p", 0, 0))
    bumped = await append(store, "a", b"new", producer=("p", 1, 0))
    assert (bumped.outcome, bumped.producer_epoch, bumped.producer_seq) == ("appended", 1, 0)
    with pytest.raises(StaleProducerEpoch) as caught:
        await append(store, "a", b"zombie", producer=("p", 0, 1))
    assert caught.value.current_epoch == 1
    with pytest.raises(InvalidRequest):
        await append(store, "a", b"bad", producer=("p", 2, 5))
    assert await read_all(store, "a") == [b"old", b"new"]


async def test_producers_are_independent_per_producer_and_stream(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    await append(store, "a", b"p0", producer=("p", 0, 0))
    await append(store, "a", b"q0", producer=("q", 3, 0))
    await append(store, "b", b"p0", producer=("p", 0, 0))  # same id, other stream: new
    await append(store, "a", b"p1", producer=("p", 0, 1))
    assert await read_all(store, "a") == [b"p0", b"q0", b"p1"]
    assert await read_all(store, "b") == [b"p0"]


async def test_refused_appends_change_nothing(store: Store) -> None:
    await create(store, "a")
    await append(store, "a", b"0", producer=("p", 0, 0), stream_seq="5")
    refusals = [
        append(store, "a", b"x", producer=("p", 0, 7)),
        append(store, "a", b"x", stream_seq="4"),
        append(store, "a", b"x", content_type="application/json"),
    ]
    for attempt in refusals:
        with pytest.raises((ProducerSequenceGap, StreamSeqConflict, ContentTypeMismatch)):
            await attempt
    assert await read_all(store, "a") == [b"0"]
    ok = await append(store, "a", b"1", producer=("p", 0, 1), stream_seq="6")
    assert ok.tail == 2


# -- forks (§4.2) -----------------------------------------------------------------------------


async def test_fork_reads_source_prefix_then_its_own(store: Store) -> None:
    await create(store, "src", b"a", b"b", b"c")
    fork = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 2))
    assert fork.created
    assert fork.info.tail == 2
    assert fork.info.config == TEXT  # inherited
    assert fork.info.fork == ForkSpec("src", 2, 0)
    await append(store, "src", b"d")
    await append(store, "f", b"F")
    assert await read_all(store, "f") == [b"a", b"b", b"F"]
    assert await read_all(store, "f", 1) == [b"b", b"F"]
    assert await read_all(store, "src") == [b"a", b"b", b"c", b"d"]


async def test_fork_defaults_to_the_source_tail_and_starts_open(store: Store) -> None:
    await create(store, "src", b"a", b"b", closed=True)
    fork = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src"))
    assert fork.info.fork == ForkSpec("src", 2, 0)
    assert not fork.info.closed
    await append(store, "f", b"c")
    assert await read_all(store, "f") == [b"a", b"b", b"c"]


async def test_fork_errors(store: Store) -> None:
    await create(store, "src", b"a")
    with pytest.raises(StreamNotFound):
        await create(store, "f", fork=ForkSpec("missing"))
    with pytest.raises(InvalidRequest):
        await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 2))
    with pytest.raises(StreamConflict):
        await create(store, "f", config=JSON, fork=ForkSpec("src", 0))
    assert await store.list_paths() == ["src"]


async def test_fork_create_is_idempotent(store: Store) -> None:
    await create(store, "src", b"a", b"b")
    first = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1))
    again = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1))
    assert not again.created
    assert again.info.stream_id == first.info.stream_id
    with pytest.raises(StreamConflict):
        await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 0))


async def test_fork_of_a_fork_stitches_the_chain(store: Store) -> None:
    await create(store, "a", *numbered("a", 5))
    await create(store, "b", config=StreamConfig(""), fork=ForkSpec("a", 3))
    await append(store, "b", b"b3", b"b4")
    await create(store, "c", config=StreamConfig(""), fork=ForkSpec("b", 4))
    await append(store, "c", b"c4")
    assert await read_all(store, "c") == [b"a0", b"a1", b"a2", b"b3", b"c4"]
    assert await read_all(store, "c", max_bytes=1) == [b"a0", b"a1", b"a2", b"b3", b"c4"]
    assert await read_all(store, "c", 2, max_bytes=5) == [b"a2", b"b3", b"c4"]


async def test_fork_byte_sub_offset_keeps_a_partial_message(store: Store) -> None:
    await create(store, "src", b"hello", b"world", config=BYTES)
    fork = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1, 3))
    assert fork.info.fork == ForkSpec("src", 1, 3)
    assert fork.info.tail == 2
    await append(store, "f", b"!")
    assert await read_all(store, "f") == [b"hello", b"wor", b"!"]
    with pytest.raises(InvalidRequest):
        await create(store, "g", config=StreamConfig(""), fork=ForkSpec("src", 1, 6))
    with pytest.raises(InvalidRequest):
        await create(store, "g", config=StreamConfig(""), fork=ForkSpec("src", 2, 1))


async def test_fork_json_sub_offset_counts_messages(store: Store) -> None:
    await create(store, "src", b"1", b"2", b"3", b"4", config=JSON)
    fork = await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1, 2))
    assert fork.info.tail == 3
    assert await read_all(store, "f") == [b"1", b"2", b"3"]
    with pytest.raises(InvalidRequest):
        await create(store, "g", config=StreamConfig(""), fork=ForkSpec("src", 3, 2))


async def test_fork_does_not_inherit_writer_state(store: Store) -> None:
    await create(store, "src")
    await append(store, "src", b"0", producer=("p", 0, 0), stream_seq="9")
    await append(store, "src", b"1", producer=("p", 0, 1), stream_seq="99")
    await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src"))
    fresh = await append(store, "f", b"f0", producer=("p", 0, 0), stream_seq="1")
    assert fresh.outcome == "appended"
    assert await read_all(store, "f") == [b"0", b"1", b"f0"]


async def test_fork_ttl_follows_the_table(store: Store) -> None:
    await create(store, "ttl", config=StreamConfig("text/plain", ttl_seconds=600))
    inherited = await create(store, "f1", config=StreamConfig(""), fork=ForkSpec("ttl"))
    assert inherited.info.config.ttl_seconds == 600
    own = await create(store, "f2", config=StreamConfig("", ttl_seconds=30), fork=ForkSpec("ttl"))
    assert own.info.config.ttl_seconds == 30
    at = datetime.now(UTC) + timedelta(days=1)
    hard = await create(store, "f3", config=StreamConfig("", expires_at=at), fork=ForkSpec("ttl"))
    assert (hard.info.config.ttl_seconds, hard.info.config.expires_at) == (None, at)


async def test_delete_with_forks_soft_deletes_until_the_last_fork_goes(store: Store) -> None:
    await create(store, "src", b"a", b"b")
    await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1))
    await store.delete("src")
    for attempt in [store.head("src"), store.read("src", 0), append(store, "src", b"x")]:
        with pytest.raises(StreamGone):
            await attempt
    with pytest.raises(StreamGone):
        await store.delete("src")
    with pytest.raises(StreamConflict):
        await create(store, "src")
    with pytest.raises(StreamConflict):
        await create(store, "g", config=StreamConfig(""), fork=ForkSpec("src"))
    assert await store.list_paths() == ["f"]
    assert await read_all(store, "f") == [b"a"]
    await store.delete("f")
    with pytest.raises(StreamNotFound):
        await store.head("src")
    assert (await create(store, "src", b"new")).created
    assert await read_all(store, "src") == [b"new"]


async def test_soft_delete_cascades_up_the_chain(store: Store) -> None:
    await create(store, "a", b"a0")
    await create(store, "b", config=StreamConfig(""), fork=ForkSpec("a"))
    await create(store, "c", config=StreamConfig(""), fork=ForkSpec("b"))
    await store.delete("a")
    await store.delete("b")
    assert await read_all(store, "c") == [b"a0"]
    await store.delete("c")
    for path in ["a", "b", "c"]:
        with pytest.raises(StreamNotFound):
            await store.head(path)
    assert await store.list_paths() == []


# -- TTL and Expires-At (§5.1) ----------------------------------------------------------------


async def test_expires_at_makes_the_stream_invisible(store: Store) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    first = await create(store, "a", b"x", config=StreamConfig("text/plain", expires_at=soon))
    await create(store, "keep")
    assert (await store.head("a")).tail == 1
    await asyncio.sleep(0.35)
    with pytest.raises(StreamNotFound):
        await store.head("a")
    with pytest.raises(StreamNotFound):
        await store.read("a", 0)
    with pytest.raises(StreamNotFound):
        await append(store, "a", b"y")
    assert await store.list_paths() == ["keep"]
    again = await create(store, "a", b"fresh")
    assert again.created
    assert again.info.stream_id != first.info.stream_id
    assert await read_all(store, "a") == [b"fresh"]


async def test_reclaim_expired_with_an_injected_clock(store: Store) -> None:
    await create(store, "ttl", b"x", config=StreamConfig("text/plain", ttl_seconds=60))
    at = datetime.now(UTC) + timedelta(seconds=30)
    await create(store, "at", config=StreamConfig("text/plain", expires_at=at))
    await create(store, "forever")
    now = time.time()
    assert await store.reclaim_expired(now + 10) == 0
    assert await store.reclaim_expired(now + 45) == 1  # "at" only
    assert await store.reclaim_expired(now + 3600) == 1  # then "ttl"
    assert await store.reclaim_expired(now + 7200) == 0
    assert await store.list_paths() == ["forever"]
    with pytest.raises(StreamNotFound):
        await store.head("ttl")


async def test_reclaimed_fork_source_keeps_serving_its_forks(store: Store) -> None:
    await create(store, "src", b"s0", config=StreamConfig("text/plain", ttl_seconds=60))
    await create(store, "f", config=StreamConfig("", ttl_seconds=100_000), fork=ForkSpec("src"))
    assert await store.reclaim_expired(time.time() + 3600) == 1
    assert await read_all(store, "f") == [b"s0"]
    with pytest.raises(StreamConflict):
        await create(store, "src")
    await store.delete("f")
    assert (await create(store, "src")).created


async def test_recreating_an_expired_fork_source_conflicts_and_keeps_the_fork(
    store: Store,
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    await create(store, "src", b"s0", config=StreamConfig("text/plain", expires_at=soon))
    await create(store, "f", config=StreamConfig("", ttl_seconds=100_000), fork=ForkSpec("src"))
    await asyncio.sleep(0.4)  # expired, not yet reclaimed: the PUT itself must notice
    with pytest.raises(StreamConflict):
        await create(store, "src", b"new")
    assert await read_all(store, "f") == [b"s0"]


async def test_reads_and_appends_renew_a_sliding_ttl(store: Store) -> None:
    await create(store, "a", config=StreamConfig("text/plain", ttl_seconds=1))
    await asyncio.sleep(0.6)
    await store.read("a", 0)
    await asyncio.sleep(0.6)
    await append(store, "a", b"x")  # 1.2 s after create, 0.6 s after the read
    await asyncio.sleep(0.6)
    assert await store.reclaim_expired() == 0
    assert (await store.head("a")).tail == 1
    assert await store.reclaim_expired(time.time() + 1.1) == 1


# -- reads -----------------------------------------------------------------------------------


async def test_reads_chunk_by_max_bytes(store: Store) -> None:
    messages = [bytes([65 + i]) * 10 for i in range(10)]
    await create(store, "a", *messages)
    first = await store.read("a", 0, max_bytes=25)
    assert first.payloads == messages[:3]  # the message that crosses the budget is included
    assert (first.next, first.tail, first.up_to_date) == (3, 10, False)
    exact = await store.read("a", 0, max_bytes=20)
    assert exact.payloads == messages[:2]
    assert await read_all(store, "a", max_bytes=25) == messages
    big = await store.read("a", 4, max_bytes=1)
    assert big.payloads == [messages[4]]  # one message larger than the budget comes whole


async def test_many_messages_read_back_in_chunks(store: Store) -> None:
    await create(store, "a")
    expected: list[bytes] = []
    for batch in range(30):
        payloads = [f"{batch:03d}-{i:03d}".encode() * 3 for i in range(100)]
        await append(store, "a", *payloads)
        expected.extend(payloads)
    assert await read_all(store, "a") == expected
    assert await read_all(store, "a", 1234, max_bytes=4096) == expected[1234:]


# -- wait() ----------------------------------------------------------------------------------


async def test_wait_times_out_without_a_change(store: Store) -> None:
    await create(store, "a", b"x")
    assert await store.wait("a", 0, 0.01)  # data already there
    started = time.monotonic()
    assert not await store.wait("a", 1, 0.1)
    assert time.monotonic() - started >= 0.09


async def test_wait_wakes_every_waiter_on_append(store: Store) -> None:
    await create(store, "a")
    waiters = [asyncio.create_task(store.wait("a", 0, 5)) for _ in range(50)]
    await asyncio.sleep(0.02)
    assert not any(w.done() for w in waiters)
    started = time.monotonic()
    await append(store, "a", b"x")
    assert all(await asyncio.gather(*waiters))
    assert time.monotonic() - started < 1


async def test_wait_wakes_on_close_and_delete(store: Store) -> None:
    await create(store, "a")
    await create(store, "b")
    closing = asyncio.create_task(store.wait("a", 0, 5))
    deleting = asyncio.create_task(store.wait("b", 0, 5))
    await asyncio.sleep(0.02)
    await append(store, "a", close=True)
    await store.delete("b")
    assert await asyncio.wait_for(closing, 2)
    assert await asyncio.wait_for(deleting, 2)
    assert await store.wait("missing", 0, 5)


async def test_notifier_listeners_hear_appends(store: Store) -> None:
    heard: list[str] = []
    store.notifier.add_listener(heard.append)
    await create(store, "a")
    await append(store, "a", b"x")
    await asyncio.sleep(0)
    assert "a" in heard


# -- concurrency -----------------------------------------------------------------------------


async def test_concurrent_appends_land_once_each_in_order(store: Store) -> None:
    await create(store, "a")
    writers, per_writer = 40, 25

    async def plain(w: int) -> list[int]:
        tails = []
        for n in range(per_writer):
            tails.append((await append(store, "a", f"w{w}-{n}".encode())).tail)
        return tails

    async def producer(w: int) -> list[int]:
        tails = []
        for n in range(per_writer):
            result = await append(store, "a", f"p{w}-{n}".encode(), producer=(f"p{w}", 0, n))
            assert result.outcome == "appended"
            tails.append(result.tail)
        return tails

    tasks = [plain(w) for w in range(writers // 2)] + [producer(w) for w in range(writers // 2)]
    results = await asyncio.gather(*tasks)
    stored = await read_all(store, "a")
    assert len(stored) == writers * per_writer
    assert len(set(stored)) == len(stored)
    all_tails = [t for tails in results for t in tails]
    assert sorted(all_tails) == list(range(1, writers * per_writer + 1))
    for w in range(writers // 2):
        for kind, tails in (("w", results[w]), ("p", results[writers // 2 + w])):
            mine = [m for m in stored if m.startswith(f"{kind}{w}-".encode())]
            assert mine == [f"{kind}{w}-{n}".encode() for n in range(per_writer)]
            for n, tail in enumerate(tails):  # each answer names the message's own position
                assert stored[tail - 1] == f"{kind}{w}-{n}".encode()


async def test_concurrent_retries_of_one_claim_append_once(store: Store) -> None:
    await create(store, "a")
    results = await asyncio.gather(
        *(append(store, "a", b"once", producer=("p", 0, 0)) for _ in range(10))
    )
    assert sorted(r.outcome for r in results) == ["appended"] + ["duplicate"] * 9
    assert await read_all(store, "a") == [b"once"]


async def test_a_refused_request_does_not_affect_its_neighbours(store: Store) -> None:
    await create(store, "a")
    attempts = [append(store, "a", f"ok{i}".encode()) for i in range(5)]
    attempts.insert(2, append(store, "a", b"bad", content_type="application/json"))
    attempts.insert(4, append(store, "missing", b"x"))
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert isinstance(results[2], ContentTypeMismatch)
    assert isinstance(results[4], StreamNotFound)
    assert sorted(await read_all(store, "a")) == [f"ok{i}".encode() for i in range(5)]
