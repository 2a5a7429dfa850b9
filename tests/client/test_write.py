"""Writing with ``DurableStream`` against both real servers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from millstream.client import (
    DurableStream,
    DurableStreamError,
    SeqConflictError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
    stream,
)


def read_all(url: str) -> list[Any]:
    with stream(url, live=False) as res:
        return res.read_json()


def test_create_is_idempotent_and_conflicts_on_other_config(url: str) -> None:
    DurableStream.create(url, content_type="application/json", ttl_seconds=3600)
    DurableStream.create(url, content_type="application/json", ttl_seconds=3600)
    with pytest.raises(StreamExistsError) as info:
        DurableStream.create(url, content_type="text/plain")
    assert info.value.status == 409
    assert "connect" in info.value.hint


def test_create_validates_expiry_arguments(url: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        DurableStream.create(url, ttl_seconds=1, expires_at="2099-01-01T00:00:00Z")


def test_head_reports_metadata(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json", data={"a": 1})
    head = handle.head()
    assert head.exists
    assert head.content_type == "application/json"
    assert head.offset
    assert not head.closed
    handle.close_stream()
    assert handle.head().closed
    assert handle.head().stream_closed


def test_connect_requires_the_stream(url: str) -> None:
    with pytest.raises(StreamNotFoundError):
        DurableStream.connect(url)
    DurableStream.create(url, content_type="application/json")
    assert DurableStream.connect(url).content_type == "application/json"


def test_plain_handle_learns_content_type_on_first_append(url: str) -> None:
    DurableStream.create(url, content_type="application/json")
    handle = DurableStream(url)
    assert handle.content_type is None
    handle.append({"message": "hello"})
    handle.append(["a", "list", "is", "one", "message"])
    handle.append('"text"')  # a str on a JSON stream is JSON text, as officially
    handle.append(42)
    assert handle.content_type == "application/json"
    assert read_all(url) == [
        {"message": "hello"},
        ["a", "list", "is", "one", "message"],
        "text",
        42,
    ]


def test_append_returns_growing_offsets(url: str) -> None:
    handle = DurableStream.create(url, content_type="text/plain")
    first = handle.append("a").next_offset
    second = handle.append(b"b").next_offset
    assert second > first  # offsets sort lexicographically (PROTOCOL.md 8)
    with pytest.raises(DurableStreamError, match="bytes or str"):
        handle.append({"not": "bytes"})


def test_seq_regression_is_a_conflict(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append({"event": "click"}, seq="seq-001")
    handle.append({"event": "scroll"}, seq="seq-002")
    with pytest.raises(SeqConflictError) as info:
        handle.append({"event": "late"}, seq="seq-001")
    assert info.value.status == 409
    assert not info.value.retryable
    assert read_all(url) == [{"event": "click"}, {"event": "scroll"}]


def test_close_with_final_body_then_appends_fail(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append(1)
    final = handle.close_stream({"done": True})
    assert final.final_offset
    with pytest.raises(StreamClosedError) as info:
        handle.append(2)
    assert info.value.final_offset == final.final_offset
    handle.close_stream()  # closing again is fine
    assert read_all(url) == [1, {"done": True}]


def test_delete(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.delete()
    with pytest.raises(StreamNotFoundError):
        handle.head()


def test_append_to_missing_stream(url: str) -> None:
    handle = DurableStream(url, content_type="application/json")
    with pytest.raises(StreamNotFoundError):
        handle.append(1)


def test_threaded_appends_are_batched_in_order_per_thread(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    threads, per_thread = 8, 50

    def work(t: int) -> list[str]:
        return [handle.append({"t": t, "i": i}).next_offset for i in range(per_thread)]

    with ThreadPoolExecutor(threads) as pool:
        offsets = list(pool.map(work, range(threads)))
    items = read_all(url)
    assert len(items) == threads * per_thread
    for t in range(threads):
        assert [x["i"] for x in items if x["t"] == t] == list(range(per_thread))
        assert offsets[t] == sorted(offsets[t])
    # Batching happened: fewer distinct POSTs (offsets) than appends.
    assert len({o for per in offsets for o in per}) < threads * per_thread


def test_batching_false_sends_one_post_per_append(url: str) -> None:
    DurableStream.create(url, content_type="application/json")
    handle = DurableStream(url, batching=False)
    offsets = [handle.append(i).next_offset for i in range(5)]
    assert len(set(offsets)) == 5


def test_a_failed_batch_fails_each_of_its_callers(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.close_stream()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            handle.append(1)
        except StreamClosedError as exc:
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(errors) == 6


def test_handle_stream_reads_with_offset(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    middle = handle.append(1).next_offset
    handle.append(2)
    with handle.stream(offset=middle, live=False) as res:
        assert res.read_json() == [2]
