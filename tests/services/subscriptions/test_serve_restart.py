"""Subscriptions survive restarts of a real ``millstream serve`` process on the SQLite store.

One graceful stop (SIGTERM) and one crash (SIGKILL): after each, the subscription, its cursors,
generation counter, signing key and the outstanding wake's callback token are all still valid.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from millstream.log import format_offset
from servers import ServerProcess, millstream_argv

from .conftest import ROOT, Receiver, verify_signature


async def _start(data_dir: Path) -> ServerProcess:
    argv = millstream_argv("--data-dir", str(data_dir), "--long-poll-timeout", "0.5")
    return await asyncio.to_thread(ServerProcess, argv)


async def test_webhook_subscription_survives_sigterm_and_kill(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = await _start(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url + ROOT, timeout=10) as client:
            created = await client.put(
                "__ds/subscriptions/s1",
                json={
                    "type": "webhook",
                    "pattern": "events/*",
                    "webhook": {"url": receiver.url},
                    "lease_ttl_ms": 60_000,
                },
            )
            assert created.status_code == 201, created.text
            kid = created.json()["webhook"]["signing"]["kid"]
            jwks = (await client.get("__ds/jwks.json")).json()
            response = await client.put(
                "events/a", content=b'{"n":1}', headers={"content-type": "application/json"}
            )
            assert response.status_code == 201
            (note,) = await receiver.wait(1)
            assert verify_signature(note, jwks)
            before = (await client.get("__ds/subscriptions/s1")).json()
    finally:
        assert await asyncio.to_thread(server.terminate) == 0

    for stop in ("kill", "terminate"):
        server = await _start(tmp_path)
        try:
            async with httpx.AsyncClient(base_url=server.url + ROOT, timeout=10) as client:
                after: dict[str, Any] = (await client.get("__ds/subscriptions/s1")).json()
                after["webhook"]["signing"].pop("jwks_url")
                expected = {**before, "webhook": {**before["webhook"]}}
                expected["webhook"]["signing"] = {
                    k: v for k, v in before["webhook"]["signing"].items() if k != "jwks_url"
                }
                assert after == expected
                assert after["webhook"]["signing"]["kid"] == kid
                assert (await client.get("__ds/jwks.json")).json() == jwks
                if stop == "kill":
                    continue
                # Last round: the pre-restart wake is still the current one and can finish.
                callback = await client.post(
                    "__ds/subscriptions/s1/callback",
                    json={
                        "wake_id": note.body["wake_id"],
                        "generation": note.body["generation"],
                        "acks": [{"stream": "events/a", "offset": format_offset(1)}],
                        "done": True,
                    },
                    headers={"authorization": f"Bearer {note.body['callback_token']}"},
                )
                assert callback.json() == {"ok": True, "next_wake": False}
                await client.post(
                    "events/a", content=b'{"n":2}', headers={"content-type": "application/json"}
                )
                received = await receiver.wait(2)
                assert received[1].body["generation"] == note.body["generation"] + 1
                assert verify_signature(received[1], jwks)
        finally:
            if stop == "kill":
                await asyncio.to_thread(server.kill)
            else:
                assert await asyncio.to_thread(server.terminate) == 0
