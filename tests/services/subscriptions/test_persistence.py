"""State survives a restart: a fresh service on the same store resumes exactly where it stopped.

The store keeps running between the two services (as the SQLite file does between processes),
so everything the second service knows it read back from the reserved ``__ds/`` streams.
"""

from __future__ import annotations

import time

import httpx

from millstream.log import AppendRequest, CreateRequest, MemoryStore, StreamConfig, format_offset
from millstream.services.subscriptions import SubscriptionService
from millstream.services.subscriptions._persist import COMPACT_AFTER, STATE_PREFIX

from .conftest import ROOT, LiveServer, Receiver, eventually, mount


class Running:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def __aenter__(self) -> tuple[SubscriptionService, str, httpx.AsyncClient]:
        self.service = SubscriptionService(self.store)
        await self.service.start()
        self.server = LiveServer(mount(self.service))
        await self.server.__aenter__()
        self.client = httpx.AsyncClient(timeout=10)
        return self.service, self.server.url, self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.server.__aexit__()
        await self.service.aclose()


def _sub(url: str, sub_id: str, action: str = "") -> str:
    return f"{url}{ROOT}__ds/subscriptions/{sub_id}" + (f"/{action}" if action else "")


async def test_state_keys_and_tokens_survive_restart(
    store: MemoryStore, receiver: Receiver
) -> None:
    json_config = StreamConfig(content_type="application/json")
    await store.create("events/a", CreateRequest(json_config, [b"1"]))
    async with Running(store) as (_, url, client):
        created = await client.put(
            _sub(url, "s1"),
            json={
                "type": "webhook",
                "pattern": "events/*",
                "webhook": {"url": receiver.url},
                "lease_ttl_ms": 60_000,
            },
        )
        assert created.status_code == 201
        kid = created.json()["webhook"]["signing"]["kid"]
        await store.append("events/a", AppendRequest([b"2", b"3"]))
        (note,) = await receiver.wait(1)
        before = (await client.get(_sub(url, "s1"))).json()

    async with Running(store) as (_, url, client):
        after = (await client.get(_sub(url, "s1"))).json()
        for sub in (before, after):  # the JWKS URL follows the new port; the rest is the same
            sub["webhook"]["signing"].pop("jwks_url")
        assert after == before
        assert after["webhook"]["signing"]["kid"] == kid
        # The wake issued before the restart is still current: its token and generation work.
        callback = await client.post(
            note.body["callback_url"].replace(note.body["callback_url"].split(ROOT)[0], url),
            json={
                "wake_id": note.body["wake_id"],
                "generation": note.body["generation"],
                "acks": [{"stream": "events/a", "offset": format_offset(3)}],
                "done": True,
            },
            headers={"authorization": f"Bearer {note.body['callback_token']}"},
        )
        assert callback.json() == {"ok": True, "next_wake": False}

    async with Running(store) as (_, url, client):
        streams = (await client.get(_sub(url, "s1"))).json()["streams"]
        assert streams[0]["acked_offset"] == format_offset(3)
        await store.append("events/a", AppendRequest([b"4"]))
        received = await receiver.wait(2)
        # Generations keep counting across restarts: fencing never repeats a number.
        assert received[1].body["generation"] == note.body["generation"] + 1


async def test_retry_schedule_and_discovery_survive_restart(
    store: MemoryStore, receiver: Receiver
) -> None:
    receiver.responses = [(503, {}), (200, {"done": True})]
    async with Running(store) as (_, url, client):
        await client.put(
            _sub(url, "s1"),
            json={"type": "webhook", "pattern": "events/*", "webhook": {"url": receiver.url}},
        )
        await store.create("events/a", CreateRequest(StreamConfig("application/json"), [b"1"]))
        await receiver.wait(1)

        async def failed() -> bool:
            return (await client.get(_sub(url, "s1"))).json()["status"] == "failed"

        await eventually(failed, timeout=1)
        stopped_at = time.monotonic()
    # While stopped, a new matching stream appears: it is linked from 0 on restart.
    await store.create("events/b", CreateRequest(StreamConfig("application/json"), [b"x"]))
    async with Running(store) as (_, url, client):
        assert (await client.get(_sub(url, "s1"))).json()["status"] == "failed"
        received = await receiver.wait(2, timeout=5)
        # The retry keeps the persisted schedule (about 1 s after the failure), not a fresh one.
        assert time.monotonic() - stopped_at < 2.5
        assert received[1].body["wake_id"] == received[0].body["wake_id"]

        async def all_acked() -> bool:
            sub = (await client.get(_sub(url, "s1"))).json()
            acked = {s["path"]: s["acked_offset"] for s in sub["streams"]}
            return sub["status"] == "active" and acked == {
                "events/a": format_offset(1),
                "events/b": format_offset(1),
            }

        await eventually(all_acked)


async def test_pull_wake_claim_survives_restart(store: MemoryStore) -> None:
    json_config = StreamConfig(content_type="application/json")
    await store.create("wake/pool", CreateRequest(json_config))
    async with Running(store) as (_, url, client):
        await client.put(
            _sub(url, "p1"),
            json={"type": "pull-wake", "streams": ["jobs/1"], "wake_stream": "wake/pool"},
        )
        await store.create("jobs/1", CreateRequest(json_config, [b"1"]))

        async def woke() -> bool:
            return (await store.head("wake/pool")).tail == 1

        await eventually(woke)
        claimed = (await client.post(_sub(url, "p1", "claim"), json={"worker": "w1"})).json()
    async with Running(store) as (_, url, client):
        busy = await client.post(_sub(url, "p1", "claim"), json={"worker": "w2"})
        assert busy.json()["error"]["current_holder"] == "w1"
        done = await client.post(
            _sub(url, "p1", "ack"),
            json={
                "wake_id": claimed["wake_id"],
                "generation": claimed["generation"],
                "acks": [{"stream": "jobs/1", "offset": format_offset(1)}],
                "done": True,
            },
            headers={"authorization": f"Bearer {claimed['token']}"},
        )
        assert done.json() == {"ok": True, "next_wake": False}


async def test_state_streams_compact(store: MemoryStore, receiver: Receiver) -> None:
    async with Running(store) as (_, url, client):
        await client.put(
            _sub(url, "s1"),
            json={"type": "webhook", "streams": ["a"], "webhook": {"url": receiver.url}},
        )
        for i in range(COMPACT_AFTER + 5):
            response = await client.post(_sub(url, "s1", "streams"), json={"streams": [f"x/{i}"]})
            assert response.status_code == 204
        paths = await store.list_paths(STATE_PREFIX, include_internal=True)
        assert len(paths) == 1
        assert (await store.head(paths[0])).tail < COMPACT_AFTER
    async with Running(store) as (_, url, client):
        streams = (await client.get(_sub(url, "s1"))).json()["streams"]
        assert len(streams) == COMPACT_AFTER + 6
