"""``RunOnce`` in one process: the lease holder runs the service, a second node forwards to it
over real HTTP, and with no reachable holder the answer is 503 with ``Retry-After``.

Two "nodes" share one ``MemoryStore`` (a lease and membership need nothing more); each mounts
its ``RunOnce`` routes in a real uvicorn server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from millstream.log import Lease, Membership, MemoryStore
from millstream.server.http._types import Receive, Scope, Send
from millstream.services import FORWARDED_HEADER, Route, RunOnce, Service

from .subscriptions.conftest import LiveServer


class Echo(Service):
    """Answers which instance it is, the Host it was sent and the body."""

    name = "echo"
    run_once = True
    made = 0

    def __init__(self) -> None:
        Echo.made += 1
        self.number = Echo.made
        self.started = False

    def routes(self) -> Sequence[Route]:
        return [Route("/echo", self.app)]

    async def start(self) -> None:
        self.started = True

    async def aclose(self) -> None:
        self.started = False

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        answer = orjson.dumps(
            {
                "number": self.number,
                "host": headers.get(b"host", b"").decode(),
                "forwarded": headers.get(FORWARDED_HEADER, b"").decode(),
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "body": body.decode(),
            }
        )
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until ``condition()`` (background tasks of the services get there)."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def asgi(service: Service) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for route in service.routes():
            if route.matches(scope["path"]):
                await route.app(scope, receive, send)
                return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_the_holder_runs_it_and_the_other_node_forwards() -> None:
    store = MemoryStore()
    await store.start()
    members = [Membership(store, name, ttl=30) for name in ("a", "b")]
    onces = [
        RunOnce(lambda _lease: Echo(), Lease(store, "service.echo", m.name, ttl=30), m)
        for m in members
    ]
    async with LiveServer(asgi(onces[0])) as server_a, LiveServer(asgi(onces[1])) as server_b:
        for member, server in zip(members, (server_a, server_b), strict=True):
            await member.start()
            member.publish({"http": server.url})
        await onces[0].start()  # a campaigns first: it holds the lease
        await eventually(lambda: onces[0].active is not None)
        await onces[1].start()
        for member in members:
            await member.beat()
        await eventually(lambda: onces[1].lease.leader == "a")
        async with httpx.AsyncClient(timeout=10) as client:
            direct = (await client.post(server_a.url + "/echo/x?q=1", content=b"hi")).json()
            forwarded = await client.post(
                server_b.url + "/echo/x?q=1", content=b"hi", headers={"host": "public.example"}
            )
            assert forwarded.status_code == 200
            via_b = forwarded.json()
            assert via_b["number"] == direct["number"]  # the one running copy answered
            assert via_b["host"] == "public.example"  # the client's Host is kept
            assert via_b["forwarded"] == "b"
            assert (via_b["path"], via_b["query"], via_b["body"]) == ("/echo/x", "q=1", "hi")

            # A request already forwarded once is not forwarded again.
            looped = await client.get(
                server_b.url + "/echo", headers={FORWARDED_HEADER.decode(): "a"}
            )
            assert looped.status_code == 503
            assert looped.headers["retry-after"] == "1"
            assert looped.json()["error"]["code"] == "UNAVAILABLE"

            # The holder stops (its lease is released): b takes over at its next try.
            await onces[0].aclose()
            await onces[1].lease.try_acquire()
            await eventually(lambda: onces[1].active is not None)
            taken = (await client.post(server_b.url + "/echo", content=b"")).json()
            assert taken["number"] != direct["number"]
            assert taken["forwarded"] == ""
        await onces[1].aclose()
        for member in members:
            await member.aclose()
    await store.aclose()


async def test_no_reachable_holder_is_a_503() -> None:
    store = MemoryStore()
    await store.start()
    member = Membership(store, "b", ttl=30)
    await member.start()
    elsewhere = Lease(store, "service.echo", "a", ttl=30)
    assert await elsewhere.try_acquire()  # held by a node that published no address
    once = RunOnce(lambda _lease: Echo(), Lease(store, "service.echo", "b", ttl=30), member)
    await once.start()
    try:
        async with LiveServer(asgi(once)) as server, httpx.AsyncClient(timeout=10) as client:
            await eventually(lambda: once.lease.leader == "a")
            answer = await client.put(server.url + "/echo", content=b"x")
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert (await once.health())["leader"] == "a"
    finally:
        await once.aclose()
        await member.aclose()
        await store.aclose()
