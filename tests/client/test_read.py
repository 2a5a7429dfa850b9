"""Reading with ``stream()`` against both real servers: modes, one-shot responses, decoding,
EOF, resume by offset, dynamic headers/params, on_error."""

from __future__ import annotations

import functools
import operator
import threading
import time
from typing import Any

import pytest

from millstream.client import (
    DurableStream,
    SSEBytesIterationError,
    StreamConsumedError,
    StreamEvent,
    StreamNotFoundError,
    stream,
)

from .conftest import Server


def make_json(url: str, *items: Any) -> DurableStream:
    handle = DurableStream.create(url, content_type="application/json")
    for item in items:
        handle.append(item)
    return handle


def test_read_json_flattens_and_stops_when_up_to_date(url: str) -> None:
    make_json(url, {"a": 1}, [1, 2], '"x"')
    with stream(url) as res:  # live="auto": read_* stop at up-to-date
        assert res.read_json() == [{"a": 1}, [1, 2], "x"]
        assert res.up_to_date
        assert not res.stream_closed


def test_read_json_batches_and_decode(url: str) -> None:
    make_json(url, 1, 2, 3)
    with stream(url, live=False) as res:
        batches = res.read_json_batches()
    assert functools.reduce(operator.iadd, batches, []) == [1, 2, 3]
    with stream(url, live=False) as res:
        assert list(res.iter_json(decode=lambda v: v * 10)) == [10, 20, 30]


def test_one_shot_response(url: str) -> None:
    make_json(url, 1)
    with stream(url, live=False) as res:
        res.read_json()
        with pytest.raises(StreamConsumedError) as info:
            res.read_bytes()
    assert "read_json" in str(info.value) or "iter_json" in str(info.value)


def test_bytes_text_and_offsets(url: str) -> None:
    handle = DurableStream.create(url, content_type="text/plain", data="héllo ")
    handle.append("wörld")
    with stream(url, live=False) as res:
        assert res.read_text() == "héllo wörld"
        end = res.offset
    with stream(url, live=False) as res:
        assert b"".join(res) == "héllo wörld".encode()
    handle.append("!")
    with stream(url, offset=end, live=False) as res:  # resume exactly after what was read
        assert res.read_bytes() == b"!"


def test_iter_events_carry_offsets(url: str) -> None:
    make_json(url, {"n": 1})
    with stream(url, live=False) as res:
        events = list(res.iter_events(mode="json"))
    assert events
    assert isinstance(events[0], StreamEvent)
    assert events[0].data == [{"n": 1}]
    assert events[-1].up_to_date
    assert events[-1].next_offset


def test_closed_stream_is_eof_in_every_mode(url: str) -> None:
    handle = make_json(url, 1, 2)
    handle.close_stream({"final": True})
    for live in ("auto", "long-poll", "sse"):
        started = time.monotonic()
        with stream(url, live=live) as res:  # type: ignore[arg-type]
            assert list(res.iter_json()) == [1, 2, {"final": True}]
            assert res.stream_closed
        assert time.monotonic() - started < 5


def test_auto_iteration_keeps_tailing(url: str) -> None:
    handle = make_json(url, 0)

    def writer() -> None:
        time.sleep(0.3)
        handle.append(1)
        time.sleep(0.3)
        handle.close_stream(2)

    thread = threading.Thread(target=writer)
    thread.start()
    with stream(url) as res:
        assert list(res.iter_json()) == [0, 1, 2]
    # The reader may see the close before the writer has read its answer: wait for it, or
    # releasing the handle at teardown would cut the writer's connection.
    thread.join()


@pytest.mark.parametrize("live", ["long-poll", "sse"])
def test_live_modes_deliver_new_items(url: str, live: str) -> None:
    handle = make_json(url)
    got: list[Any] = []

    def writer() -> None:
        for i in range(5):
            time.sleep(0.05)
            handle.append({"i": i})

    thread = threading.Thread(target=writer)
    with stream(url, live=live) as res:  # type: ignore[arg-type]
        thread.start()
        for item in res.iter_json():
            got.append(item)
            if len(got) == 5:
                break
    thread.join()
    assert got == [{"i": i} for i in range(5)]


def test_sse_refuses_raw_bytes_and_decodes_text(url: str) -> None:
    DurableStream.create(url, content_type="text/plain", data="line one\nline two", closed=True)
    with stream(url, live="sse") as res, pytest.raises(SSEBytesIterationError):
        iter(res)
    with stream(url, live="sse") as res:
        assert "".join(res.iter_text()) == "line one\nline two"


def test_sse_binary_is_decoded_from_base64(url: str) -> None:
    payload = bytes(range(256)) * 4
    DurableStream.create(url, content_type="application/octet-stream", data=payload, closed=True)
    with stream(url, live="sse") as res:  # events (not raw iteration) carry decoded bytes
        events = list(res.iter_events(mode="bytes"))
    assert b"".join(e.data or b"" for e in events) == payload
    assert events[-1].closed


def test_missing_stream_raises_at_once(server: Server) -> None:
    with pytest.raises(StreamNotFoundError) as info:
        stream(server.stream_url("does-not-exist"))
    assert info.value.status == 404
    assert info.value.hint
    assert not info.value.retryable


def test_callable_headers_and_params_are_evaluated_per_request(url: str) -> None:
    make_json(url, 1)
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return f"Bearer {len(calls)}"

    with stream(url, live=False, headers={"Authorization": token}, params={"t": "x"}) as res:
        assert res.read_json() == [1]
    assert calls


def test_on_error_returning_none_propagates(server: Server) -> None:
    calls: list[Exception] = []

    def on_error(error: Exception) -> None:
        calls.append(error)

    with pytest.raises(StreamNotFoundError):
        stream(server.stream_url("missing"), on_error=on_error)
    assert len(calls) == 1
    assert isinstance(calls[0], StreamNotFoundError)
