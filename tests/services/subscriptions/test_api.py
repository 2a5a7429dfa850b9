"""The §6 control API over HTTP: create/re-confirm, read, delete, membership, JWKS, bad input."""

from __future__ import annotations

import pytest

from millstream.log import format_offset

from .conftest import ROOT, Harness, Receiver, eventually


async def test_create_reconfirm_conflict(h: Harness, receiver: Receiver) -> None:
    body = {
        "type": "webhook",
        "pattern": "/events/*/",
        "streams": ["b/x", "a/y", "b/x"],
        "webhook": {"url": receiver.url},
        "description": "d",
    }
    created = await h.client.put(h.sub_url("s1"), json=body)
    assert created.status_code == 201
    data = created.json()
    assert data["id"] == data["subscription_id"] == "s1"
    assert data["pattern"] == "events/*"
    assert data["lease_ttl_ms"] == 30_000
    assert data["status"] == "active"
    assert data["created_at"].endswith("Z")
    assert "webhook_secret" not in data
    assert data["webhook"]["signing"]["jwks_url"] == f"{h.url}{ROOT}__ds/jwks.json"
    assert data["webhook"]["signing"]["kid"].startswith("ds_")
    # Same config in another spelling (order, duplicates, slashes, default lease) re-confirms.
    same = {**body, "pattern": "events/*", "streams": ["a/y", "b/x"], "lease_ttl_ms": 30_000}
    confirmed = await h.client.put(h.sub_url("s1"), json=same)
    assert confirmed.status_code == 200
    assert confirmed.json()["created_at"] == data["created_at"]
    changed = await h.client.put(h.sub_url("s1"), json={**body, "description": "other"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "SUBSCRIPTION_ALREADY_EXISTS"


async def test_get_and_delete(h: Harness, receiver: Receiver) -> None:
    assert (await h.client.get(h.sub_url("s1"))).status_code == 404
    await h.put_sub("s1", type="webhook", streams=["a"], webhook={"url": receiver.url})
    assert (await h.get_sub("s1"))["type"] == "webhook"
    assert (await h.client.delete(h.sub_url("s1"))).status_code == 204
    gone = await h.client.get(h.sub_url("s1"))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "SUBSCRIPTION_NOT_FOUND"
    assert (await h.client.delete(h.sub_url("s1"))).status_code == 204  # idempotent
    # The id is free again, with any configuration.
    again = await h.put_sub("s1", type="webhook", streams=["b"], webhook={"url": receiver.url})
    assert again.status_code == 201


async def test_backfill_links_existing_streams_at_their_tail(
    h: Harness, receiver: Receiver
) -> None:
    await h.create_stream("events/old", b"1", b"2", b"3")
    await h.create_stream("events/deep/no", b"1")
    await h.create_stream("other/x", b"1")
    await h.put_sub("s1", type="webhook", pattern="events/*", webhook={"url": receiver.url})
    streams = (await h.get_sub("s1"))["streams"]
    assert streams == [
        {"path": "events/old", "link_type": "glob", "acked_offset": format_offset(3)}
    ]
    await h.put_sub("s2", type="webhook", pattern="events/**", webhook={"url": receiver.url})
    paths = [s["path"] for s in (await h.get_sub("s2"))["streams"]]
    assert paths == ["events/deep/no", "events/old"]
    assert receiver.received == []  # nothing new, nothing delivered


async def test_explicit_membership(h: Harness, receiver: Receiver) -> None:
    await h.create_stream("events/a", b"1", b"2")
    await h.put_sub(
        "s1",
        type="webhook",
        pattern="events/*",
        streams=["manual/a"],
        webhook={"url": receiver.url},
    )
    add = await h.client.post(
        h.sub_url("s1", "streams"), json={"streams": ["manual/b", "events/a", "manual/b"]}
    )
    assert add.status_code == 204
    streams = {s["path"]: s for s in (await h.get_sub("s1"))["streams"]}
    assert streams["events/a"]["link_type"] == "explicit"  # explicit wins when both apply
    assert streams["events/a"]["acked_offset"] == format_offset(2)
    assert streams["manual/b"]["acked_offset"] == format_offset(0)

    for path in ("manual%2Fb", "events%2Fa", "never%2Flinked"):
        response = await h.client.delete(h.sub_url("s1", f"streams/{path}"))
        assert response.status_code == 204
    streams = {s["path"]: s for s in (await h.get_sub("s1"))["streams"]}
    assert set(streams) == {"manual/a", "events/a"}
    assert streams["events/a"]["link_type"] == "glob"  # the glob link remains

    for bad in ({}, {"streams": []}, {"streams": [1]}, {"streams": ["__ds/x"]}, []):
        response = await h.client.post(h.sub_url("s1", "streams"), json=bad)
        assert response.status_code == 400, bad


async def test_stream_deletion_unlinks_glob_and_resets_explicit(
    h: Harness, receiver: Receiver
) -> None:
    await h.create_stream("events/a", b"1")
    await h.create_stream("manual/m", b"1", b"2")
    await h.put_sub(
        "s1",
        type="webhook",
        pattern="events/*",
        streams=["manual/m"],
        webhook={"url": receiver.url},
    )
    await h.store.delete("events/a")
    await h.store.delete("manual/m")

    async def settled() -> bool:
        streams = (await h.get_sub("s1"))["streams"]
        return streams == [
            {"path": "manual/m", "link_type": "explicit", "acked_offset": format_offset(0)}
        ]

    await eventually(settled)


async def test_jwks(h: Harness) -> None:
    response = await h.client.get(f"{h.url}{ROOT}__ds/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert key["kty"] == "OKP"
    assert key["crv"] == "Ed25519"
    assert key["alg"] == "EdDSA"
    assert key["use"] == "sig"
    assert key["kid"].startswith("ds_")
    assert "d" not in key  # never the private part
    refused = await h.client.post(f"{h.url}{ROOT}__ds/jwks.json")
    assert refused.status_code == 405
    assert "GET" in refused.headers["allow"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "INVALID_REQUEST"),
        (b"{", "INVALID_REQUEST"),
        (b"[]", "INVALID_REQUEST"),
        (b'{"type": "push", "pattern": "a"}', "INVALID_REQUEST"),
        (b'{"type": "webhook", "webhook": {"url": "https://example.com"}}', "INVALID_REQUEST"),
        (b'{"type": "webhook", "pattern": "a"}', "INVALID_REQUEST"),
        (b'{"type": "webhook", "pattern": "a", "webhook": "x"}', "INVALID_REQUEST"),
        (b'{"type": "pull-wake", "pattern": "a"}', "INVALID_REQUEST"),
        (b'{"type": "pull-wake", "pattern": "a", "wake_stream": 5}', "INVALID_REQUEST"),
        (b'{"type": "pull-wake", "pattern": "a", "wake_stream": "__ds/x"}', "INVALID_REQUEST"),
        (
            b'{"type": "pull-wake", "pattern": "a", "wake_stream": "w", "lease_ttl_ms": 999}',
            "INVALID_REQUEST",
        ),
        (
            b'{"type": "pull-wake", "pattern": "a", "wake_stream": "w", "lease_ttl_ms": 600001}',
            "INVALID_REQUEST",
        ),
        (
            b'{"type": "pull-wake", "pattern": "a", "wake_stream": "w", "lease_ttl_ms": "1000"}',
            "INVALID_REQUEST",
        ),
        (b'{"type": "pull-wake", "streams": "a", "wake_stream": "w"}', "INVALID_REQUEST"),
        (b'{"type": "pull-wake", "streams": [null], "wake_stream": "w"}', "INVALID_REQUEST"),
        (b'{"type": "pull-wake", "pattern": 7, "wake_stream": "w"}', "INVALID_REQUEST"),
        (
            b'{"type": "pull-wake", "pattern": "a", "wake_stream": "w", "description": 1}',
            "INVALID_REQUEST",
        ),
        (b'{"type": "webhook", "pattern": "a", "webhook": {"url": "http://10.0.0.1/h"}}', None),
    ],
)
async def test_malformed_create_is_a_json_400(h: Harness, body: bytes, code: str | None) -> None:
    response = await h.client.put(h.sub_url("s1"), content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == (code or "WEBHOOK_URL_REJECTED")
    assert (await h.client.get(h.sub_url("s1"))).status_code == 404


async def test_unknown_routes_and_methods(h: Harness) -> None:
    for path, method, status in [
        ("__ds/nothing", "GET", 404),
        ("__ds/subscriptions", "GET", 404),
        ("__ds/subscriptions/s1/frobnicate", "POST", 404),
        ("__ds/subscriptions/s1", "POST", 405),
        ("__ds/subscriptions/s1/claim", "GET", 405),
        ("__ds/subscriptions/s1/streams", "GET", 405),
    ]:
        response = await h.client.request(method, f"{h.url}{ROOT}{path}")
        assert response.status_code == status, (path, method)
        assert "code" in response.json()["error"]


async def test_oversized_body_is_413(h: Harness) -> None:
    response = await h.client.put(h.sub_url("s1"), content=b" " * (1 << 20) + b"{}")
    assert response.status_code == 413
