"""The HTTP front door against a real uvicorn: writes, reads, JSON mode, caching, errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import orjson
from conftest import LiveServer

_ids = itertools.count()


def fresh(name: str) -> str:
    return f"{name}-{next(_ids)}"


def create(
    client: httpx.Client, path: str, content_type: str = "text/plain", **kw: object
) -> httpx.Response:
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}  # type: ignore[dict-item]
    return client.put(f"/v1/stream/{path}", headers=headers, **kw)  # type: ignore[arg-type]


def assert_json_error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]
    return error


def test_health_reports_the_store(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "memory (nothing survives a restart)"}


def test_create_append_read_round_trip(client: httpx.Client, live: LiveServer) -> None:
    path = fresh("roundtrip")
    created = create(client, path, content="hello ")
    assert created.status_code == 201
    assert created.headers["location"] == live.stream_url(path)
    assert created.headers["stream-next-offset"] == "0000000000000001_0000000000000000"
    appended = client.post(
        f"/v1/stream/{path}", content=b"world", headers={"Content-Type": "text/plain"}
    )
    assert appended.status_code == 204
    assert appended.headers["stream-next-offset"] == "0000000000000002_0000000000000000"
    read = client.get(f"/v1/stream/{path}", params={"offset": "-1"})
    assert read.status_code == 200
    assert read.content == b"hello world"
    assert read.headers["stream-up-to-date"] == "true"
    assert read.headers["x-content-type-options"] == "nosniff"
    assert read.headers["access-control-allow-origin"] == "*"
    assert "stream-closed" not in read.headers
    again = create(client, path)
    assert again.status_code == 200
    assert_json_error(create(client, path, "application/json"), 409)


def test_json_mode_flattens_one_level_and_wraps_reads(client: httpx.Client) -> None:
    path = fresh("json")
    assert create(client, path, "application/json", content=b"[]").status_code == 201
    url = f"/v1/stream/{path}"
    headers = {"Content-Type": "application/json"}
    assert client.post(url, content=b'[{"a":1},[2,3]]', headers=headers).status_code == 204
    assert client.post(url, content=b' {"b": "x"} ', headers=headers).status_code == 204
    assert client.get(url).json() == [{"a": 1}, [2, 3], {"b": "x"}]
    assert_json_error(client.post(url, content=b"[]", headers=headers), 400)
    assert_json_error(client.post(url, content=b"{nope", headers=headers), 400)
    assert client.get(url).json() == [{"a": 1}, [2, 3], {"b": "x"}]
    now = client.get(url, params={"offset": "now"})
    assert now.content == b"[]"
    assert now.headers["cache-control"] == "no-store"


def test_etag_304_and_closure_changes_it(client: httpx.Client) -> None:
    path = fresh("etag")
    create(client, path, content="x")
    first = client.get(f"/v1/stream/{path}")
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=60")
    assert client.get(f"/v1/stream/{path}", headers={"If-None-Match": etag}).status_code == 304
    closed = client.post(f"/v1/stream/{path}", headers={"Stream-Closed": "true"})
    assert closed.status_code == 204
    assert closed.headers["stream-closed"] == "true"
    after = client.get(f"/v1/stream/{path}", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"].endswith(':c"')
    assert after.headers["stream-closed"] == "true"
    rejected = client.post(
        f"/v1/stream/{path}", content=b"more", headers={"Content-Type": "text/plain"}
    )
    assert_json_error(rejected, 409)
    assert rejected.headers["stream-closed"] == "true"


def test_head_is_not_cacheable_and_has_metadata(client: httpx.Client) -> None:
    path = fresh("head")
    create(client, path, headers={"Stream-TTL": "3600"})
    head = client.head(f"/v1/stream/{path}")
    assert head.status_code == 200
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["stream-ttl"] == "3600"
    assert head.content == b""
    assert client.head("/v1/stream/" + fresh("missing")).status_code == 404


def test_idempotent_producer_statuses_and_headers(client: httpx.Client) -> None:
    path = fresh("producer")
    create(client, path)
    url = f"/v1/stream/{path}"

    def send(epoch: int, seq: int) -> httpx.Response:
        headers = {
            "Content-Type": "text/plain",
            "Producer-Id": "p1",
            "Producer-Epoch": str(epoch),
            "Producer-Seq": str(seq),
        }
        return client.post(url, content=f"{epoch}/{seq}", headers=headers)

    first = send(0, 0)
    assert first.status_code == 200
    assert (first.headers["producer-epoch"], first.headers["producer-seq"]) == ("0", "0")
    assert send(0, 0).status_code == 204  # duplicate
    gap = send(0, 5)
    assert_json_error(gap, 409)
    assert (gap.headers["producer-expected-seq"], gap.headers["producer-received-seq"]) == (
        "1",
        "5",
    )
    assert send(1, 0).status_code == 200
    stale = send(0, 1)
    assert_json_error(stale, 403)
    assert stale.headers["producer-epoch"] == "1"
    assert client.get(url).content == b"0/01/0"


def test_long_poll_times_out_with_204_and_cursor(client: httpx.Client) -> None:
    path = fresh("lp")
    tail = create(client, path).headers["stream-next-offset"]
    response = client.get(f"/v1/stream/{path}", params={"offset": tail, "live": "long-poll"})
    assert response.status_code == 204
    assert response.headers["stream-up-to-date"] == "true"
    assert response.headers["stream-cursor"].isdigit()
    cursor = response.headers["stream-cursor"]
    again = client.get(
        f"/v1/stream/{path}", params={"offset": tail, "live": "long-poll", "cursor": cursor}
    )
    assert int(again.headers["stream-cursor"]) > int(cursor)


def test_sse_base64_for_binary_and_closure_event(client: httpx.Client) -> None:
    path = fresh("sse-bin")
    create(client, path, "application/octet-stream", content=b"\x00\x01\xff")
    client.post(f"/v1/stream/{path}", headers={"Stream-Closed": "true"})
    with client.stream("GET", f"/v1/stream/{path}", params={"offset": "-1", "live": "sse"}) as sse:
        assert sse.headers["content-type"] == "text/event-stream"
        assert sse.headers["stream-sse-data-encoding"] == "base64"
        body = sse.read()
    assert body.startswith(b"event: data\ndata:AAH/\n\nevent: control\ndata:")
    control = orjson.loads(body.split(b"event: control\ndata:")[1])
    assert control["streamClosed"] is True
    assert "streamCursor" not in control


def test_oversize_body_gets_413_and_nothing_is_stored(client: httpx.Client) -> None:
    path = fresh("big")
    create(client, path)
    url = f"/v1/stream/{path}"
    too_big = client.post(
        url, content=b"x" * ((1 << 20) + 1), headers={"Content-Type": "text/plain"}
    )
    assert_json_error(too_big, 413)

    def chunks() -> object:
        for _ in range(20):
            yield b"y" * 65536

    chunked = client.post(url, content=chunks(), headers={"Content-Type": "text/plain"})  # type: ignore[arg-type]
    assert_json_error(chunked, 413)
    assert client.get(url).content == b""

    def small_chunks() -> Iterator[bytes]:
        yield b"chunked "
        yield b"body"

    accepted = client.post(url, content=small_chunks(), headers={"Content-Type": "text/plain"})
    assert accepted.status_code == 204
    assert client.get(url).content == b"chunked body"


def test_reserved_prefix_is_404_when_subscriptions_are_off(client: httpx.Client) -> None:
    assert_json_error(client.put("/v1/stream/__ds/x", headers={"Content-Type": "text/plain"}), 404)
    assert_json_error(client.get("/v1/stream/__ds/subscriptions/a"), 404)


def test_preflight_allows_protocol_headers(client: httpx.Client) -> None:
    response = client.options(
        "/v1/stream/anything",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    allowed = response.headers["access-control-allow-headers"]
    for name in ("producer-id", "stream-seq", "if-none-match", "stream-closed"):
        assert name in allowed


def test_delete_then_404_and_fork_soft_delete_410(client: httpx.Client) -> None:
    source = fresh("src")
    fork = fresh("fork")
    create(client, source, content="abc")
    forked = client.put(
        f"/v1/stream/{fork}", headers={"Stream-Forked-From": f"/v1/stream/{source}"}
    )
    assert forked.status_code == 201
    assert forked.headers["content-type"] == "text/plain"
    assert client.delete(f"/v1/stream/{source}").status_code == 204
    assert_json_error(client.get(f"/v1/stream/{source}"), 410)
    assert client.get(f"/v1/stream/{fork}").content == b"abc"
    assert client.delete(f"/v1/stream/{fork}").status_code == 204
    assert_json_error(client.get(f"/v1/stream/{fork}"), 404)
