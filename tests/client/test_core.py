"""I/O-free pieces: retry policy, Retry-After, the retry flow, batch queue, JSON framing."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from millstream.client import DurableStreamError, FetchError, InvalidArgumentError, RetryPolicy
from millstream.client._core import (
    Request,
    Sleep,
    batch_body,
    encode_item,
    parse_retry_after,
    send_flow,
)
from millstream.client._handle import BatchQueue, Pending


def test_backoff_doubles_and_caps() -> None:
    policy = RetryPolicy(jitter=False)
    assert [policy.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    jittered = RetryPolicy()
    assert all(0.25 <= jittered.delay(0) <= 0.5 for _ in range(100))


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=100.0) == 8.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 < (parse_retry_after(later) or 0) <= 5.0


def test_policy_rejects_out_of_range_values() -> None:
    for bad, argument in [
        ({"max_retries": -1}, "max_retries"),
        ({"initial_delay": 0}, "initial_delay"),
        ({"initial_delay": 2.0, "max_delay": 1.0}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
    ]:
        with pytest.raises(ValueError, match=argument) as info:
            RetryPolicy(**bad)  # type: ignore[arg-type]
        assert isinstance(info.value, InvalidArgumentError)
        assert (info.value.code, info.value.argument) == ("INVALID_ARGUMENT", argument)


def _drive(request: Request, outcomes: list[object]) -> tuple[list[object], object]:
    flow = send_flow(request, RetryPolicy(jitter=False))
    steps: list[object] = [next(flow)]
    try:
        for outcome in outcomes:
            steps.append(flow.send(outcome))  # type: ignore[arg-type]
            if isinstance(steps[-1], Sleep):
                steps.append(flow.send(None))
    except StopIteration as stop:
        return steps, stop.value
    except FetchError as exc:
        return steps, exc
    raise AssertionError("flow did not finish")


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_flow_retries_503_with_retry_after_then_succeeds() -> None:
    request = Request("GET", "http://x/s")
    steps, result = _drive(request, [_response(503, **{"retry-after": "1"}), _response(200)])
    assert Sleep(1.0) in steps
    assert isinstance(result, httpx.Response)
    assert result.status_code == 200


def test_flow_gives_up_after_max_retries() -> None:
    request = Request("GET", "http://x/s")
    steps, result = _drive(request, [_response(500)] * 3)
    assert [s for s in steps if isinstance(s, Sleep)] == [Sleep(0.5), Sleep(1.0)]
    assert isinstance(result, httpx.Response)
    assert result.status_code == 500


def test_flow_never_retries_a_sent_non_idempotent_append() -> None:
    request = Request("POST", "http://x/s", idempotent=False)
    _, result = _drive(request, [httpx.ReadError("cut")])
    assert isinstance(result, FetchError)
    assert result.retryable
    _, result = _drive(request, [_response(500)])
    assert isinstance(result, httpx.Response)
    assert result.status_code == 500


def test_flow_retries_unsent_or_rejected_appends() -> None:
    request = Request("POST", "http://x/s", idempotent=False)
    _, result = _drive(request, [httpx.ConnectError("refused"), _response(204)])
    assert isinstance(result, httpx.Response)
    assert result.status_code == 204
    _, result = _drive(request, [_response(429), _response(204)])
    assert isinstance(result, httpx.Response)
    assert result.status_code == 204


def test_batch_queue_keeps_order_and_isolates_seq_and_close() -> None:
    queue = BatchQueue(max_bytes=10)
    assert queue.add(Pending(b"a")) is True
    for p in [Pending(b"b"), Pending(b"c", seq="1"), Pending(b"d"), Pending(b"", close=True)]:
        assert queue.add(p) is False
    assert [p.body for p in queue.take()] == [b"a", b"b"]
    assert [p.body for p in queue.take()] == [b"c"]
    assert [p.body for p in queue.take()] == [b"d"]
    assert queue.take()[0].close
    assert queue.finish() is False
    assert queue.sending is False


def test_batch_queue_respects_max_bytes() -> None:
    queue = BatchQueue(max_bytes=4)
    for body in [b"aa", b"bb", b"cc"]:
        queue.add(Pending(body))
    assert [p.body for p in queue.take()] == [b"aa", b"bb"]
    assert queue.finish() is True


def test_json_framing() -> None:
    items = [encode_item(v, True) for v in [{"a": 1}, '"x"', [1, 2], 3]]
    assert batch_body(items, True) == b'[{"a":1},"x",[1,2],3]'
    assert batch_body([b"ab", b"cd"], False) == b"abcd"
    assert encode_item(b'{"raw":true}', True) == b'{"raw":true}'
    with pytest.raises(DurableStreamError, match="non-JSON stream"):
        encode_item({"a": 1}, False)
    with pytest.raises(DurableStreamError) as info:
        encode_item(object(), True)
    assert info.value.hint


def test_read_session_never_moves_back_on_an_empty_answer() -> None:
    # A stale tail in an empty long-poll answer must not make the next read repeat data.
    from millstream.client._read import ReadSession

    session = ReadSession(
        "http://x/s",
        offset=None,
        live="long-poll",
        headers=None,
        params=None,
        timeout=httpx.Timeout(1),
    )
    first = session.on_body(200, {"Stream-Next-Offset": "0_126"}, b"[1,2]")
    assert (first.next_offset, session.offset) == ("0_126", "0_126")
    stale = session.on_body(204, {"Stream-Next-Offset": "0_118"}, b"")
    assert (stale.next_offset, session.offset) == ("0_126", "0_126")
    assert session.next_request().params["offset"] == "0_126"
    session.on_body(200, {"Stream-Next-Offset": "0_134"}, b"[3]")
    assert session.offset == "0_134"
