"""Pull-wake: wake events in the wake stream, claim, ack and heartbeat, release, leases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from millstream.log import format_offset

from .conftest import Harness, eventually


async def _setup(h: Harness, lease_ttl_ms: int = 5000) -> None:
    await h.create_stream("wake/pool")
    response = await h.put_sub(
        "p1",
        type="pull-wake",
        pattern="events/*",
        wake_stream="wake/pool",
        lease_ttl_ms=lease_ttl_ms,
    )
    assert response.status_code == 201, response.text
    assert response.json()["wake_stream"] == "wake/pool"
    assert response.json()["webhook"] is None


async def _wakes(h: Harness, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(await h.read_json("wake/pool")) >= count

    await eventually(enough)
    return await h.read_json("wake/pool")


async def _claim(h: Harness, worker: str) -> httpx.Response:
    return await h.client.post(h.sub_url("p1", "claim"), json={"worker": worker})


def _auth(claimed: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {claimed['token']}"}


async def test_claim_ack_and_next_wake(h: Harness) -> None:
    await _setup(h)
    await h.create_stream("events/a", b"1", b"2")
    (wake,) = await _wakes(h, 1)
    assert wake["type"] == "wake"
    assert wake["subscription_id"] == "p1"
    assert wake["stream"] == "events/a"
    assert wake["generation"] == 1
    assert isinstance(wake["ts"], int)

    claim = await _claim(h, "worker-1")
    assert claim.status_code == 200, claim.text
    claimed = claim.json()
    assert claimed["generation"] == 1
    assert claimed["lease_ttl_ms"] == 5000
    assert claimed["streams"][0]["tail_offset"] == format_offset(2)

    busy = await _claim(h, "worker-2")
    assert busy.status_code == 409
    assert busy.json()["error"] | {"message": ""} == {
        "code": "ALREADY_CLAIMED",
        "current_holder": "worker-1",
        "generation": 1,
        "message": "",
    }

    # New data while the lease is held: no second wake event yet.
    await h.append("events/a", b"3")
    await asyncio.sleep(0.1)
    assert len(await h.read_json("wake/pool")) == 1

    ack = {
        "wake_id": claimed["wake_id"],
        "generation": 1,
        "acks": [{"stream": "events/a", "offset": format_offset(2)}],
        "done": True,
    }
    response = await h.client.post(h.sub_url("p1", "ack"), json=ack, headers=_auth(claimed))
    assert response.json() == {"ok": True, "next_wake": True}  # message 3 is still pending
    wakes = await _wakes(h, 2)
    assert wakes[1]["generation"] == 2

    stale = await h.client.post(h.sub_url("p1", "ack"), json=ack, headers=_auth(claimed))
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "FENCED"

    second = (await _claim(h, "worker-2")).json()
    ack2 = {
        "wake_id": second["wake_id"],
        "generation": second["generation"],
        "acks": [{"stream": "events/a", "offset": format_offset(3)}],
        "done": True,
    }
    response = await h.client.post(h.sub_url("p1", "ack"), json=ack2, headers=_auth(second))
    assert response.json() == {"ok": True, "next_wake": False}
    nothing = await _claim(h, "worker-1")
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "NO_PENDING_WORK"


async def test_claim_without_a_wake_event_and_release_rewakes(h: Harness) -> None:
    await _setup(h)
    await h.create_stream("events/a")
    await h.append("events/a", b"1")
    claimed = (await _claim(h, "w")).json()
    release = {"wake_id": claimed["wake_id"], "generation": claimed["generation"]}
    before = len(await _wakes(h, 1))
    response = await h.client.post(h.sub_url("p1", "release"), json=release, headers=_auth(claimed))
    assert response.status_code == 204
    # §7.2: pending work remains after a release, so another wake event is written.
    wakes = await _wakes(h, before + 1)
    assert wakes[-1]["generation"] == claimed["generation"] + 1
    again = await h.client.post(h.sub_url("p1", "release"), json=release, headers=_auth(claimed))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "FENCED"


async def test_lease_expires_unless_heartbeated(h: Harness) -> None:
    await _setup(h, lease_ttl_ms=1000)
    await h.create_stream("events/a", b"1")
    await _wakes(h, 1)
    claimed = (await _claim(h, "w1")).json()
    heartbeat = {"wake_id": claimed["wake_id"], "generation": claimed["generation"]}
    for _ in range(3):  # 1.8 s of heartbeats at 0.6 s keep a 1 s lease alive
        await asyncio.sleep(0.6)
        response = await h.client.post(
            h.sub_url("p1", "ack"), json=heartbeat, headers=_auth(claimed)
        )
        assert response.json() == {"ok": True, "next_wake": False}
    assert (await _claim(h, "w2")).status_code == 409
    # Stop heartbeating: the lease lapses, the holder is cleared and the work is woken again.
    wakes = await _wakes(h, 2)
    assert wakes[-1]["generation"] == claimed["generation"] + 1
    taken = await _claim(h, "w2")
    assert taken.status_code == 200
    late = await h.client.post(h.sub_url("p1", "ack"), json=heartbeat, headers=_auth(claimed))
    assert late.status_code == 409


async def test_claim_is_only_for_pull_wake_and_needs_a_worker(h: Harness) -> None:
    await _setup(h)
    for body in ({}, {"worker": ""}, {"worker": 3}, []):
        response = await h.client.post(h.sub_url("p1", "claim"), json=body)
        assert response.status_code == 400, body
    missing = await h.client.post(h.sub_url("nope", "claim"), json={"worker": "w"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SUBSCRIPTION_NOT_FOUND"


async def test_wake_stream_is_never_its_own_trigger(h: Harness) -> None:
    await h.create_stream("wake/pool")
    await h.put_sub("p1", type="pull-wake", pattern="**", wake_stream="wake/pool")
    await h.create_stream("events/a", b"1")
    await _wakes(h, 1)
    await asyncio.sleep(0.1)
    sub = await h.get_sub("p1")
    assert [s["path"] for s in sub["streams"]] == ["events/a"]
    assert len(await h.read_json("wake/pool")) == 1
