"""Services that run once across a cluster (``RunOnce``): subscriptions on three nodes.

One node holds the subscriptions lease and runs the engine; the others forward the
subscription API to it. A webhook is delivered once per wake, not once per node, and when the
leader is killed another node takes the lease over and goes on from the state in PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from servers import ServerProcess
from services.subscriptions.conftest import LiveServer, Receiver, receiver_app, verify_signature

from .conftest import StartCluster, health

pytestmark = pytest.mark.timeout(180)

ROOT = "/v1/stream/"


@pytest.fixture
async def webhooks() -> AsyncIterator[Receiver]:
    """A webhook receiver that answers every delivery ``{"done": true}``."""
    received = Receiver(responses=[(200, {"done": True})])
    async with LiveServer(receiver_app(received)) as server:
        received.url = f"{server.url}/webhook"
        yield received


def leaders(nodes: list[ServerProcess], service: str) -> list[str | None]:
    return [health(node)["services"][service]["leader"] for node in nodes]


async def agreed_leader(
    nodes: list[ServerProcess],
    timeout: float = 30,
    *,
    other_than: str | None = None,
    service: str = "subscriptions",
) -> str:
    """The lease holder of ``service`` every node names, once they all name the same one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        seen = await asyncio.to_thread(leaders, nodes, service)
        if seen[0] not in (None, other_than) and len(set(seen)) == 1:
            return seen[0]
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.1)


async def test_subscriptions_run_once_and_move_when_their_node_dies(
    start_cluster: StartCluster, webhooks: Receiver
) -> None:
    receiver = webhooks
    nodes = await asyncio.to_thread(start_cluster, 3)
    leader = await agreed_leader(nodes)
    names = {health(node)["cluster"]["name"]: node for node in nodes}
    others = [node for name, node in names.items() if name != leader]

    async with httpx.AsyncClient(timeout=10) as client:
        # Created through a node that does not run subscriptions: forwarded to the leader,
        # with the client's Host kept in the URLs the service builds.
        created = await client.put(
            others[0].url + ROOT + "__ds/subscriptions/hooks",
            json={"type": "webhook", "pattern": "events/*", "webhook": {"url": receiver.url}},
        )
        assert created.status_code == 201, created.text
        description = created.json()
        assert description["webhook"]["signing"]["jwks_url"].startswith(others[0].url + ROOT)
        for node in nodes:
            got = await client.get(node.url + ROOT + "__ds/subscriptions/hooks")
            assert got.status_code == 200
            assert got.json() == {**description, "webhook": got.json()["webhook"]}
        jwks = (await client.get(others[1].url + ROOT + "__ds/jwks.json")).json()

        json_type = {"content-type": "application/json"}
        put = await client.put(others[1].url + ROOT + "events/a", content=b"[1]", headers=json_type)
        assert put.status_code == 201
        (first,) = await receiver.wait(1)
        assert verify_signature(first, jwks)
        assert [s["path"] for s in first.body["streams"]] == ["events/a"]
        await asyncio.sleep(1.0)  # three engines would have sent three webhooks by now
        assert len(receiver.received) == 1

        await asyncio.to_thread(names[leader].kill)  # SIGKILL the node running them
        survivors = others
        await agreed_leader(survivors, other_than=leader)  # after --cluster-ttl
        put = await client.put(others[0].url + ROOT + "events/b", content=b"[2]", headers=json_type)
        assert put.status_code == 201
        # The new holder starts the engine, which recovers from the store and wakes: allow for
        # a loaded machine (a missing webhook still fails the test).
        try:
            notes = await receiver.wait(2, timeout=60)
        except TimeoutError:
            logs = ["".join(node.output[-40:]) for node in survivors]
            pytest.fail("no webhook after the move; the survivors said:\n" + "\n".join(logs))
        assert verify_signature(notes[1], jwks)  # the same signing key: it is in the store
        pending = {s["path"]: s["has_pending"] for s in notes[1].body["streams"]}
        assert pending == {"events/a": False, "events/b": True}
        after: dict[str, Any] = (
            await client.get(survivors[1].url + ROOT + "__ds/subscriptions/hooks")
        ).json()
        assert after["id"] == "hooks"
        assert after["webhook"]["signing"]["kid"] == description["webhook"]["signing"]["kid"]


async def test_the_sentinel_and_the_llm_gateway_run_once_answer_everywhere_and_move(
    start_cluster: StartCluster,
) -> None:
    nodes = await asyncio.to_thread(start_cluster, 2, "--llm-offline")
    answers_by_path: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for service, path in (("llm", "/v1/models"), ("sentinel", "/api/v1/anomalies")):
            leader = await agreed_leader(nodes, service=service)
            for node in nodes:
                report = health(node)
                runs_it = report["cluster"]["name"] == leader
                # Only the holder has the service's own report; the other forwards.
                assert (set(report["services"][service]) != {"status", "leader"}) == runs_it
            # The holder answers through either node (whatever it answers: the gateway wants
            # an API key here), never the 503 of a node that cannot forward.
            answers = [await client.get(node.url + path) for node in nodes]
            assert answers[0].status_code == answers[1].status_code != 503, answers[0].text
            assert answers[0].json() == answers[1].json()
            answers_by_path[path] = answers[0].status_code

        # The gateway's holder is killed: the survivor takes over whatever it held and answers
        # as before, now from its own copy of each service.
        names = {health(node)["cluster"]["name"]: node for node in nodes}
        dead = await agreed_leader(nodes, service="llm")
        await asyncio.to_thread(names[dead].kill)
        [survivor] = [node for name, node in names.items() if name != dead]
        for service, path in (("llm", "/v1/models"), ("sentinel", "/api/v1/anomalies")):
            await agreed_leader([survivor], other_than=dead, service=service)  # after the ttl
            assert set(health(survivor)["services"][service]) != {"status", "leader"}
            answer = await client.get(survivor.url + path)
            assert answer.status_code == answers_by_path[path], answer.text
