"""The node: services mounted, started and closed in order around the store; health merged;
both doors listening on free ports; a taken port fails the start and stops what started."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from millstream.log import MemoryStore
from millstream.node import Node, NodeOptions, build_services
from millstream.server.http._types import Receive, Scope, Send
from millstream.services import Route, Service
from millstream.services.kafka_admin import KafkaAdminService
from millstream.services.llm import LLMGateway
from millstream.services.sentinel import SentinelService
from millstream.services.subscriptions import SubscriptionService
from servers import REPO


class RecordingStore(MemoryStore):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def start(self) -> None:
        self.events.append("store.start")
        await super().start()

    async def aclose(self) -> None:
        self.events.append("store.aclose")
        await super().aclose()


class Echo(Service):
    """Answers its routes with its own name; records its lifecycle."""

    def __init__(self, name: str, events: list[str], *, status: str = "ok") -> None:
        self.name = name
        self.events = events
        self.status = status

    def routes(self) -> Sequence[Route]:
        return [Route(f"/v1/{self.name}", self.app)]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = f"{self.name} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def start(self) -> None:
        self.events.append(f"{self.name}.start")

    async def aclose(self) -> None:
        self.events.append(f"{self.name}.aclose")

    async def health(self) -> dict[str, Any]:
        return {"status": self.status}


class Broken(Echo):
    async def start(self) -> None:
        raise RuntimeError("cannot start")


FREE = NodeOptions(port=0, kafka_port=0, long_poll_timeout=0.5)


async def test_services_run_between_store_start_and_close() -> None:
    events: list[str] = []
    store = RecordingStore(events)
    node = Node(store, FREE, services=[Echo("one", events), Echo("two", events)])
    await node.start()
    try:
        assert node.http_url is not None
        assert node.kafka_url is not None
        async with httpx.AsyncClient(base_url=node.http_url, timeout=5) as http:
            assert (await http.get("/v1/one/x")).text == "one /v1/one/x"
            assert (await http.post("/v1/two")).text == "two /v1/two"
            assert (await http.get("/v1/onex")).status_code == 404
            health = (await http.get("/health")).json()
            created = await http.put("/v1/stream/s", headers={"content-type": "text/plain"})
            assert created.status_code == 201
    finally:
        await node.aclose()
    assert health["status"] == "ok"
    assert health["services"] == {"one": {"status": "ok"}, "two": {"status": "ok"}}
    assert health["kafka"] == node.options.host + ":" + health["kafka"].rsplit(":")[1]
    assert events == [
        "store.start",
        "one.start",
        "two.start",
        "two.aclose",
        "one.aclose",
        "store.aclose",
    ]
    await node.aclose()  # idempotent
    assert events.count("store.aclose") == 1


async def test_a_degraded_service_makes_health_503() -> None:
    node = Node(MemoryStore(), FREE, services=[Echo("sick", [], status="failing")])
    async with node.running(), httpx.AsyncClient(timeout=5) as http:
        assert node.http_url is not None
        response = await http.get(node.http_url + "/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["services"]["sick"] == {"status": "failing"}


async def test_a_service_that_fails_to_start_stops_the_ones_before_it() -> None:
    events: list[str] = []
    node = Node(RecordingStore(events), FREE, services=[Echo("one", events), Broken("two", events)])
    with pytest.raises(RuntimeError, match="cannot start"):
        await node.start()
    assert events == ["store.start", "one.start", "one.aclose", "store.aclose"]
    assert node.http_url is None


async def test_a_taken_port_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        events: list[str] = []
        node = Node(RecordingStore(events), NodeOptions(port=0, kafka_port=port), services=[])
        with pytest.raises(OSError, match="in use"):
            await node.start()
        assert events == ["store.start", "store.aclose"]
        node = Node(MemoryStore(), NodeOptions(port=port, kafka=False), services=[])
        with pytest.raises(OSError, match="cannot listen"):
            await node.start()


def test_serve_exits_1_when_its_kafka_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "millstream", "serve", "--memory", "--port", "0"]
        result = subprocess.run(
            [*argv, "--kafka-port", str(port)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert "listening" not in result.stdout


def test_services_from_options() -> None:
    store = MemoryStore()
    assert [type(s) for s in build_services(store, NodeOptions())] == [
        SubscriptionService,
        KafkaAdminService,
        SentinelService,
        LLMGateway,
    ]
    assert [type(s) for s in build_services(store, NodeOptions(sentinel=False, llm=None))] == [
        SubscriptionService,
        KafkaAdminService,
    ]
    options = NodeOptions(subscriptions=False, kafka_admin=False, sentinel=False, llm=None)
    assert build_services(store, options) == []


async def test_no_kafka_means_one_door() -> None:
    node = Node(MemoryStore(), NodeOptions(port=0, kafka=False), services=[])
    async with node.running():
        line = node.startup_line()
    assert node.kafka_url is None
    assert line.startswith("millstream listening on http://127.0.0.1:")
    assert "kafka" not in line


async def test_the_advertised_host_is_named_when_it_differs() -> None:
    options = NodeOptions(port=0, kafka_port=0, kafka_advertised_host="broker.example")
    node = Node(MemoryStore(), options, services=[])
    async with node.running():
        line = node.startup_line()
        assert node.kafka_door is not None
        port = node.kafka_door.port
    assert f"kafka://127.0.0.1:{port} advertised as broker.example:{port} (store:" in line


async def test_the_node_mounts_in_a_starlette_app() -> None:
    """``http_app`` under a prefix of a host app whose lifespan runs the node."""
    events: list[str] = []
    node = Node(MemoryStore(), NodeOptions(kafka=False), services=[Echo("echo", events)])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with node.running(listen_http=False):
            yield

    host = Starlette(routes=[Mount("/streams", app=node.http_app)], lifespan=lifespan)
    async with lifespan(host):
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            assert (await http.get("/streams/v1/echo")).text == "echo /streams/v1/echo"
            created = await http.put(
                "/streams/v1/stream/x", headers={"content-type": "text/plain"}, content=b"hi"
            )
            assert created.headers["location"] == "http://app/streams/v1/stream/x"
            assert (await http.get("/streams/v1/stream/x")).content == b"hi"
            assert (await http.get("/streams/health")).json()["services"] == {
                "echo": {"status": "ok"}
            }
        assert node.http_door is None
    assert events == ["echo.start", "echo.aclose"]
