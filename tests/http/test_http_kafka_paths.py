"""The HTTP door and the Kafka side of the log: reserved partition paths, internal paths, log
starts, and Kafka batches read over HTTP (against a real uvicorn, both protocols)."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from conftest import LiveServer

from millstream.log import CreateRequest, StreamConfig, Topics, format_offset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from log.helpers import kafka_batch

T = TypeVar("T")
_ids = itertools.count()


def on_server(live: LiveServer, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a store call on the server's own event loop."""
    return asyncio.run_coroutine_threadsafe(coroutine, live.loop).result(10)


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_partition_paths_cannot_be_created_or_deleted_but_read_and_appended(
    client: httpx.Client, live: LiveServer
) -> None:
    topic = f"orders{next(_ids)}"
    on_server(live, Topics(live.store).create(topic, 2))
    for method in ("PUT", "DELETE"):
        response = client.request(method, f"/v1/stream/{topic}:1")
        assert_json_error(response, 409, "reserved_path")
        assert "partition 1" in response.json()["error"]["message"]
    assert_json_error(client.put(f"/v1/stream/{topic}:7"), 409, "reserved_path")
    appended = client.post(
        f"/v1/stream/{topic}:1",
        content=b"hello",
        headers={"content-type": "application/octet-stream"},
    )
    assert appended.status_code in (200, 204), appended.text
    read = client.get(f"/v1/stream/{topic}:1", params={"offset": "-1"})
    assert (read.status_code, read.content) == (200, b"hello")
    # names that only look like partitions are plain streams
    assert client.put(f"/v1/stream/{topic}:01").status_code == 201
    assert client.put(f"/v1/stream/a/{topic}:1").status_code == 201


def test_internal_paths_are_not_streams(client: httpx.Client, live: LiveServer) -> None:
    on_server(
        live, live.store.create("__consumer_offsets", CreateRequest(StreamConfig("text/plain")))
    )
    for method in ("PUT", "GET", "HEAD", "POST", "DELETE"):
        response = client.request(method, "/v1/stream/__consumer_offsets", content=b"x")
        assert response.status_code == 404, (method, response.text)
        if method != "HEAD":
            assert response.json()["error"]["code"] == "not_found"
    assert client.get("/v1/stream/__x/y").status_code == 404


def test_kafka_batches_read_over_http_and_reads_below_the_log_start(
    client: httpx.Client, live: LiveServer
) -> None:
    path = f"k{next(_ids)}"
    assert (
        client.put(f"/v1/stream/{path}", headers={"content-type": "application/json"}).status_code
        == 201
    )
    on_server(
        live, live.store.produce(path, kafka_batch([b'{"a":1}', b"text", None], compression=1))
    )
    client.post(
        f"/v1/stream/{path}", content=b'{"b":2}', headers={"content-type": "application/json"}
    )
    read = client.get(f"/v1/stream/{path}", params={"offset": "-1"})
    assert read.json() == [{"a": 1}, "text", None, {"b": 2}]
    assert read.headers["stream-next-offset"] == format_offset(4)
    inside = client.get(f"/v1/stream/{path}", params={"offset": format_offset(1)})
    assert inside.json() == ["text", None, {"b": 2}]
    head = client.head(f"/v1/stream/{path}")
    assert head.headers["stream-next-offset"] == format_offset(4)
    on_server(live, live.store.delete_records(path, 2))
    below = client.get(f"/v1/stream/{path}", params={"offset": format_offset(0)})
    assert below.json() == [None, {"b": 2}]  # starts at the log start
    assert below.headers["stream-next-offset"] == format_offset(4)
    everything = client.get(f"/v1/stream/{path}", params={"offset": "-1"})
    assert everything.json() == [None, {"b": 2}]
