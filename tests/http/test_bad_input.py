"""Property tests: garbage in headers, offsets, query strings and bodies only ever earns a clear
4xx with a JSON error body (or the right 2xx) from a real server, never a 5xx or a hang, and a
rejected request never changes what a stream holds."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from conftest import LiveServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_ids = itertools.count()
_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_STRICT_INT = re.compile(r"(0|[1-9][0-9]*)")

# Header values a client can actually send: visible ASCII and spaces inside, no CR/LF/NUL.
_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
_near_ints = st.one_of(
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.sampled_from(["", "00", "01", "+1", "1.0", "1e3", "7a", "0x10", "9007199254740992"]),
    _header_text,
)
_near_offsets = st.one_of(
    st.sampled_from(
        ["-1", "now", "", "-2", "0", "0_0", "1_1", "0000000000000000_0000000000000001"]
    ),
    st.integers(min_value=0, max_value=10**17).map(lambda n: f"{n:016d}_0000000000000000"),
    _header_text,
)
_content_types = st.one_of(
    st.sampled_from(
        [
            "text/plain",
            "TEXT/PLAIN",
            "application/json",
            "text/plain; charset=utf-8",
            "",
            "text",
            "/plain",
            "text/",
            "a/b/c",
            "application/octet-stream",
        ]
    ),
    _header_text,
)


@pytest.fixture(scope="module")
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=5) as client:
        yield client


def fresh(prefix: str) -> str:
    return f"/v1/stream/bad-{prefix}-{next(_ids)}"


def assert_clean(response: httpx.Response) -> None:
    """The invariant: no 5xx, and every error is the protocol's JSON error shape."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and response.request.method != "HEAD":
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)


def snapshot(http: httpx.Client, path: str) -> tuple[bytes, str, str | None]:
    read = http.get(path)
    assert read.status_code == 200
    return read.content, read.headers["stream-next-offset"], read.headers.get("stream-closed")


@_SETTINGS
@given(
    ttl=st.none() | _near_ints,
    expires=st.none() | st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), _header_text),
    content_type=st.none() | _content_types,
    closed=st.none() | st.sampled_from(["true", "TRUE", "false", "1", ""]),
    body=st.binary(max_size=64),
)
def test_create_headers(
    http: httpx.Client,
    ttl: str | None,
    expires: str | None,
    content_type: str | None,
    closed: str | None,
    body: bytes,
) -> None:
    headers = {
        name: value
        for name, value in [
            ("Stream-TTL", ttl),
            ("Stream-Expires-At", expires),
            ("Content-Type", content_type),
            ("Stream-Closed", closed),
        ]
        if value is not None
    }
    response = http.put(fresh("create"), headers=headers, content=body)
    assert_clean(response)
    if ttl is not None and expires is not None:
        assert response.status_code == 400
    if ttl is not None and not _STRICT_INT.fullmatch(ttl):
        assert response.status_code == 400
    if response.status_code == 201 and ttl is not None:
        assert int(ttl) <= 2**53 - 1


@_SETTINGS
@given(
    producer=st.fixed_dictionaries(
        {},
        optional={
            "Producer-Id": _header_text,
            "Producer-Epoch": _near_ints,
            "Producer-Seq": _near_ints,
        },
    ),
    stream_seq=st.none() | _header_text,
    content_type=st.none() | _content_types,
    closed=st.none() | st.sampled_from(["true", "false", "yes"]),
    body=st.binary(max_size=64),
)
def test_append_headers_never_corrupt(
    http: httpx.Client,
    producer: dict[str, str],
    stream_seq: str | None,
    content_type: str | None,
    closed: str | None,
    body: bytes,
) -> None:
    path = fresh("append")
    assert (
        http.put(path, headers={"Content-Type": "text/plain"}, content=b"base").status_code == 201
    )
    before = snapshot(http, path)
    headers = dict(producer)
    for name, value in [
        ("Stream-Seq", stream_seq),
        ("Content-Type", content_type),
        ("Stream-Closed", closed),
    ]:
        if value is not None:
            headers[name] = value
    response = http.post(path, headers=headers, content=body)
    assert_clean(response)
    if response.status_code >= 400:
        assert snapshot(http, path) == before
    elif body:
        assert http.get(path).content == b"base" + body


@_SETTINGS
@given(
    body=st.one_of(st.binary(max_size=40), st.sampled_from([b"[]", b"[[]]", b"{}", b"[1,", b" "]))
)
def test_json_bodies(http: httpx.Client, body: bytes) -> None:
    path = fresh("json")
    assert http.put(path, headers={"Content-Type": "application/json"}).status_code == 201
    response = http.post(path, headers={"Content-Type": "application/json"}, content=body)
    assert_clean(response)
    if response.status_code >= 400:
        assert http.get(path).content == b"[]"
    else:
        assert http.get(path).json()  # at least one message stored, read back as valid JSON


@pytest.fixture(scope="module")
def closed_stream(http: httpx.Client) -> str:
    """A closed stream, so live reads of any kind answer at once."""
    path = fresh("closed")
    http.put(path, headers={"Content-Type": "text/plain", "Stream-Closed": "true"}, content=b"ab")
    return path


@_SETTINGS
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["offset", "live", "cursor", "x", "offset"]),
            st.one_of(_near_offsets, st.sampled_from(["sse", "long-poll", "catchup", ""])),
        ),
        max_size=4,
    )
)
def test_read_query_strings(
    http: httpx.Client, closed_stream: str, params: list[tuple[str, str]]
) -> None:
    response = http.get(closed_stream, params=params)
    assert_clean(response)
    assert response.status_code in (200, 204, 400)


@_SETTINGS
@given(
    source=st.one_of(st.just("SOURCE"), _header_text),
    offset=st.none() | _near_offsets,
    sub_offset=st.none() | _near_ints,
    content_type=st.none() | _content_types,
)
def test_fork_headers(
    http: httpx.Client,
    closed_stream: str,
    source: str,
    offset: str | None,
    sub_offset: str | None,
    content_type: str | None,
) -> None:
    headers = {"Stream-Forked-From": closed_stream if source == "SOURCE" else source}
    for name, value in [
        ("Stream-Fork-Offset", offset),
        ("Stream-Fork-Sub-Offset", sub_offset),
        ("Content-Type", content_type),
    ]:
        if value is not None:
            headers[name] = value
    before = snapshot(http, closed_stream)
    response = http.put(fresh("fork"), headers=headers)
    assert_clean(response)
    assert snapshot(http, closed_stream) == before


@_SETTINGS
@given(
    path=st.text(min_size=1, max_size=30),
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]),
)
def test_arbitrary_paths_and_methods(
    http: httpx.Client, closed_stream: str, path: str, method: str
) -> None:
    response = http.request(method, "/v1/stream/" + quote(path, safe="/"))
    assert_clean(response)
    assert snapshot(http, closed_stream)[0] == b"ab"
