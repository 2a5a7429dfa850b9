"""Webhook delivery against a real receiver: signatures, auto-ack, callbacks, fencing, retries."""

from __future__ import annotations

import time

from millstream.log import format_offset

from .conftest import Harness, Receiver, eventually, verify_signature


async def _acked(h: Harness, sub_id: str, path: str) -> str | None:
    for item in (await h.get_sub(sub_id))["streams"]:
        if item["path"] == path:
            return str(item["acked_offset"])
    return None


async def test_done_response_auto_acks_the_snapshot(h: Harness, receiver: Receiver) -> None:
    receiver.responses = [(200, {"done": True})]
    created = await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}
    )
    assert created.status_code == 201
    jwks = await h.jwks()
    assert created.json()["webhook"]["signing"]["kid"] == jwks["keys"][0]["kid"]

    await h.create_stream("events/a", b'{"n":1}', b'{"n":2}')
    (first,) = await receiver.wait(1)
    assert verify_signature(first, jwks)
    body = first.body
    assert body["subscription_id"] == "s1"
    assert body["generation"] == 1
    assert body["wake_id"].startswith("w_")
    assert body["callback_url"] == h.sub_url("s1", "callback")
    (stream,) = body["streams"]
    assert stream == {
        "path": "events/a",
        "link_type": "glob",
        "acked_offset": format_offset(0),  # discovered by its creation: all of it is new
        "tail_offset": format_offset(2),
        "has_pending": True,
    }

    async def acked() -> bool:
        return await _acked(h, "s1", "events/a") == format_offset(2)

    await eventually(acked)
    # New data after the auto-ack wakes again with a new generation.
    await h.append("events/a", b'{"n":3}')
    received = await receiver.wait(2)
    assert received[1].body["generation"] == 2
    assert received[1].body["wake_id"] != body["wake_id"]
    assert verify_signature(received[1], jwks)


async def test_tampered_body_fails_verification(h: Harness, receiver: Receiver) -> None:
    await h.put_sub("s1", type="webhook", pattern="events/*", webhook={"url": receiver.url})
    await h.create_stream("events/a", b"1")
    (first,) = await receiver.wait(1)
    first.raw = first.raw.replace(b'"generation":1', b'"generation":9')
    assert not verify_signature(first, await h.jwks())


async def test_callback_acks_then_fences_the_same_wake(h: Harness, receiver: Receiver) -> None:
    await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}, lease_ttl_ms=5000
    )
    await h.create_stream("events/a", b"1")
    (note,) = await receiver.wait(1)
    body = note.body
    auth = {"authorization": f"Bearer {body['callback_token']}"}
    ack = {
        "wake_id": body["wake_id"],
        "generation": body["generation"],
        "acks": [{"stream": "events/a", "offset": format_offset(1)}],
    }
    # A heartbeat with an ack moves the cursor and keeps the wake.
    response = await h.client.post(body["callback_url"], json=ack, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "next_wake": False}
    assert await _acked(h, "s1", "events/a") == format_offset(1)

    # Acks that regress or run past the tail are refused without moving anything.
    for bad in (format_offset(0), format_offset(5)):
        bad_ack = {**ack, "acks": [{"stream": "events/a", "offset": bad}]}
        response = await h.client.post(body["callback_url"], json=bad_ack, headers=auth)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "INVALID_OFFSET"

    response = await h.client.post(body["callback_url"], json={**ack, "done": True}, headers=auth)
    assert response.json() == {"ok": True, "next_wake": False}
    stale = await h.client.post(body["callback_url"], json={**ack, "done": True}, headers=auth)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "FENCED"


async def test_callback_token_and_request_checks(h: Harness, receiver: Receiver) -> None:
    await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}, lease_ttl_ms=5000
    )
    await h.create_stream("events/a", b"1")
    (note,) = await receiver.wait(1)
    body = note.body
    good = {"wake_id": body["wake_id"], "generation": body["generation"]}
    url = body["callback_url"]
    token = body["callback_token"]

    missing = await h.client.post(url, json=good)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "TOKEN_INVALID"
    forged = await h.client.post(url, json=good, headers={"authorization": f"Bearer {token}x"})
    assert forged.status_code == 401
    other_sub = await h.client.post(
        h.sub_url("s2", "callback"), json=good, headers={"authorization": f"Bearer {token}"}
    )
    assert other_sub.status_code == 404

    auth = {"authorization": f"Bearer {token}"}
    wrong_wake = await h.client.post(url, json={**good, "wake_id": "w_nope"}, headers=auth)
    assert wrong_wake.status_code == 409
    assert wrong_wake.json()["error"]["code"] == "FENCED"
    wrong_gen = await h.client.post(url, json={**good, "generation": 7}, headers=auth)
    assert wrong_gen.json()["error"]["code"] == "FENCED"
    for bad_body in (b"[]", b"{", b'{"wake_id": 1, "generation": 1}', b'{"wake_id": "w"}'):
        response = await h.client.post(url, content=bad_body, headers=auth)
        assert response.status_code == 400, bad_body
        assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_deleted_subscription_fails_in_flight_callbacks(
    h: Harness, receiver: Receiver
) -> None:
    await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}, lease_ttl_ms=5000
    )
    await h.create_stream("events/a", b"1")
    (note,) = await receiver.wait(1)
    assert (await h.client.delete(h.sub_url("s1"))).status_code == 204
    auth = {"authorization": f"Bearer {note.body['callback_token']}"}
    request = {
        "wake_id": note.body["wake_id"],
        "generation": note.body["generation"],
        "acks": [{"stream": "events/a", "offset": format_offset(1)}],
        "done": True,
    }
    response = await h.client.post(note.body["callback_url"], json=request, headers=auth)
    assert response.status_code == 404
    # Re-creating the id starts a new incarnation: the old token stays fenced.
    await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}, lease_ttl_ms=5000
    )
    await h.append("events/a", b"2")
    received = await receiver.wait(2)
    assert received[1].body["streams"][0]["acked_offset"] == format_offset(1)  # backfilled at tail
    request["wake_id"] = received[1].body["wake_id"]
    request["generation"] = received[1].body["generation"]
    response = await h.client.post(note.body["callback_url"], json=request, headers=auth)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "FENCED"


async def test_failed_delivery_retries_with_backoff(h: Harness, receiver: Receiver) -> None:
    receiver.responses = [(500, {}), (200, {"done": True})]
    await h.put_sub("s1", type="webhook", pattern="events/*", webhook={"url": receiver.url})
    await h.create_stream("events/a", b"1")
    await receiver.wait(1)
    started = time.monotonic()

    async def failed() -> bool:
        return (await h.get_sub("s1"))["status"] == "failed"

    await eventually(failed, timeout=1)
    received = await receiver.wait(2, timeout=5)
    waited = time.monotonic() - started
    assert 0.7 <= waited <= 2.5  # first retry after 1 s ± 20%
    assert received[1].body["wake_id"] == received[0].body["wake_id"]  # the same wake, again

    async def recovered() -> bool:
        sub = await h.get_sub("s1")
        return sub["status"] == "active" and sub["streams"][0]["acked_offset"] == format_offset(1)

    await eventually(recovered)


async def test_unanswered_wake_lease_expires_and_rewakes(h: Harness, receiver: Receiver) -> None:
    await h.put_sub(
        "s1", type="webhook", pattern="events/*", webhook={"url": receiver.url}, lease_ttl_ms=1000
    )
    await h.create_stream("events/a", b"1")
    (first,) = await receiver.wait(1)
    received = await receiver.wait(2, timeout=4)  # no callback: the lease lapses, a new wake
    assert received[1].body["generation"] == first.body["generation"] + 1
    auth = {"authorization": f"Bearer {first.body['callback_token']}"}
    stale = {"wake_id": first.body["wake_id"], "generation": first.body["generation"]}
    response = await h.client.post(first.body["callback_url"], json=stale, headers=auth)
    assert response.status_code == 409
