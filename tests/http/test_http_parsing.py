"""Sans-IO pieces of the HTTP door: cursors (§10.1), header parsing, SSE data framing."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
import pytest

from millstream.log import format_offset
from millstream.server.http._cursor import CURSOR_EPOCH, response_cursor
from millstream.server.http._errors import HttpError
from millstream.server.http._headers import (
    _query_pairs,
    canonical_content_type,
    parse_expires_at,
    parse_strict_int,
)
from millstream.server.http._jsonmode import wrap_json
from millstream.server.http._responses import content_length, next_offset_header
from millstream.server.http._sse import _data_lines


@pytest.mark.parametrize("position", [0, 1, 42, 10**12, 9_999_999_999_999_999])
def test_offset_header_bytes_match_the_log_format(position: int) -> None:
    assert next_offset_header(position) == (
        b"stream-next-offset",
        format_offset(position).encode(),
    )


def test_content_length_of_empty_and_full_bodies() -> None:
    assert content_length(b"") == (b"content-length", b"0")
    assert content_length(b"x" * 1234) == (b"content-length", b"1234")


@pytest.mark.parametrize(
    "raw",
    [
        b"offset=-1",
        b"offset=0000000000000003_0000000000000000&live=sse&cursor=77",
        b"offset=now&&live=long-poll&",
        b"offset&live=",
        b"=x&a==b&offset=1&offset=2",
        b"offset=%2D1&cursor=a+b",
        b"live=s%C3%A9&x=%zz",
        b"a;b=c&offset=-1",
    ],
)
def test_fast_query_split_answers_like_parse_qsl(raw: bytes) -> None:
    assert _query_pairs(raw) == parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 50])
def test_json_reads_wrap_messages_in_one_array(count: int) -> None:
    payloads = [orjson.dumps({"i": i}) for i in range(count)]
    assert orjson.loads(wrap_json(payloads)) == [{"i": i} for i in range(count)]
    assert payloads == [orjson.dumps({"i": i}) for i in range(count)]  # the input is untouched


def test_cursor_counts_20_second_intervals_from_the_epoch() -> None:
    assert response_cursor(None, now=CURSOR_EPOCH + 19.9) == "0"
    assert response_cursor(None, now=CURSOR_EPOCH + 40) == "2"
    assert response_cursor("1", now=CURSOR_EPOCH + 40) == "2"  # a stale echo gets the clock
    assert response_cursor("garbage", now=CURSOR_EPOCH + 40) == "2"


@pytest.mark.parametrize("echoed", ["2", "5", "1000"])
def test_cursor_jumps_ahead_of_a_current_or_future_echo(echoed: str) -> None:
    for _ in range(50):
        answer = int(response_cursor(echoed, now=CURSOR_EPOCH + 40))
        assert int(echoed) < answer <= int(echoed) + 180  # 1-3600 s of 20 s intervals


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"text/plain", "text/plain"),
        (b"TEXT/Plain ;charset=UTF-8", "text/plain; charset=UTF-8"),
        (b"application/vnd.api+json", "application/vnd.api+json"),
    ],
)
def test_content_type_is_canonical(raw: bytes, expected: str) -> None:
    assert canonical_content_type(raw) == expected


@pytest.mark.parametrize("raw", [b"text", b"/plain", b"text/", b"a/b/c", b"t\xe9xt/plain"])
def test_malformed_content_type_is_400(raw: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        canonical_content_type(raw)
    assert caught.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"01", b"+1", b"1.0", b"1e3", b"-1", b" 1", b"9" * 17])
def test_strict_integers_reject_everything_but_plain_decimals(raw: bytes) -> None:
    with pytest.raises(HttpError):
        parse_strict_int(raw, "Stream-TTL")


def test_strict_integers_accept_plain_decimals() -> None:
    assert parse_strict_int(b"0", "x") == 0
    assert parse_strict_int(b"3600", "x") == 3600


@pytest.mark.parametrize(
    "raw", [b"2030-01-01T00:00:00Z", b"2030-01-01T00:00:00.123+02:00", b"2030-01-01t00:00:00z"]
)
def test_expires_at_accepts_rfc3339(raw: bytes) -> None:
    assert parse_expires_at(raw).tzinfo is not None


@pytest.mark.parametrize("raw", [b"2030-01-01", b"2030-01-01T00:00:00", b"tomorrow", b"\xff"])
def test_expires_at_rejects_dates_without_time_or_zone(raw: bytes) -> None:
    with pytest.raises(HttpError):
        parse_expires_at(raw)


@pytest.mark.parametrize(
    ("payload", "framed"),
    [
        (b"plain", b"data:plain\n"),
        (b"a\nb", b"data:a\ndata:b\n"),
        (b"a\r\nb\rc", b"data:a\ndata:b\ndata:c\n"),
        (b" lead", b"data:  lead\n"),  # parsers strip one space; the payload's own survives
        (b"x\n y", b"data: x\ndata:  y\n"),
        (b"event: fake\n\ndata: x", b"data:event: fake\ndata:\ndata:data: x\n"),
    ],
)
def test_sse_data_lines_cannot_break_out_of_an_event(payload: bytes, framed: bytes) -> None:
    assert _data_lines(payload) == framed


def test_public_names_are_pinned() -> None:
    import millstream.server
    import millstream.server.http

    assert millstream.server.http.__all__ == [
        "DEFAULT_MAX_BODY_SIZE",
        "STREAM_PREFIX",
        "DurableStreamsApp",
        "HealthProvider",
        "HttpDoor",
        "HttpGate",
        "create_app",
        "stream_url_root",
    ]
    assert millstream.server.__all__ == ["create_app"]
