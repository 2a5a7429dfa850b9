"""Real servers for subscription tests: the service mounted in a tiny ASGI app under uvicorn, a
webhook receiver that verifies every signature against the served JWKS, and helpers."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from millstream.log import AppendRequest, CreateRequest, MemoryStore, Store, StreamConfig
from millstream.services.subscriptions import SubscriptionService

ROOT = "/v1/stream/"
JSON = StreamConfig(content_type="application/json")


def mount(service: SubscriptionService) -> Any:
    """A minimal ASGI app: ``/v1/stream/__ds/...`` goes to the service, the rest is 404."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["raw_path"].decode() if scope.get("raw_path") else scope["path"]
        prefix = ROOT + "__ds/"
        if not path.startswith(prefix):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
        await service(
            scope, receive, send, subpath=path[len(prefix) :], stream_root=f"http://{host}{ROOT}"
        )

    return app


class LiveServer:
    """uvicorn on 127.0.0.1 port 0 inside the test's event loop."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None
        self.url = ""

    async def __aenter__(self) -> LiveServer:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.005)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@dataclass
class Received:
    body: dict[str, Any]
    raw: bytes
    signature: str


@dataclass
class Receiver:
    """Records webhook POSTs; answers with ``responses`` in turn (the last one repeats)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    responses: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {})])
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"only {len(self.received)} of {count} webhooks arrived")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                continue
        return self.received


def receiver_app(receiver: Receiver) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = dict(scope["headers"])
        index = min(len(receiver.received), len(receiver.responses) - 1)
        status, answer = receiver.responses[index]
        receiver.received.append(
            Received(json.loads(raw), raw, headers.get(b"webhook-signature", b"").decode())
        )
        receiver.arrived.set()
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def verify_signature(received: Received, jwks: dict[str, Any], window_s: int = 300) -> bool:
    """Check ``Webhook-Signature`` as a receiver should (PROTOCOL.md §7.1, §12.10)."""
    fields = dict(part.split("=", 1) for part in received.signature.split(","))
    if set(fields) != {"t", "kid", "ed25519"} or abs(time.time() - int(fields["t"])) > window_s:
        return False
    keys = [k for k in jwks["keys"] if k["kid"] == fields["kid"]]
    if len(keys) != 1:
        return False
    raw_key = base64.urlsafe_b64decode(keys[0]["x"] + "==")
    signature = base64.urlsafe_b64decode(fields["ed25519"] + "==")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            signature, fields["t"].encode() + b"." + received.raw
        )
    except InvalidSignature:
        return False
    return True


@dataclass
class Harness:
    store: Store
    service: SubscriptionService
    url: str
    client: httpx.AsyncClient

    def sub_url(self, sub_id: str, action: str = "") -> str:
        return f"{self.url}{ROOT}__ds/subscriptions/{sub_id}" + (f"/{action}" if action else "")

    async def put_sub(self, sub_id: str, **body: Any) -> httpx.Response:
        return await self.client.put(self.sub_url(sub_id), json=body)

    async def get_sub(self, sub_id: str) -> dict[str, Any]:
        response = await self.client.get(self.sub_url(sub_id))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def jwks(self) -> dict[str, Any]:
        response = await self.client.get(f"{self.url}{ROOT}__ds/jwks.json")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    async def create_stream(self, path: str, *messages: bytes) -> None:
        await self.store.create(path, CreateRequest(JSON, list(messages)))

    async def append(self, path: str, *messages: bytes) -> int:
        return (await self.store.append(path, AppendRequest(list(messages)))).tail

    async def read_json(self, path: str) -> list[Any]:
        result = await self.store.read(path, 0)
        return [json.loads(p) for p in result.payloads]


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def start_harness(store: Store) -> tuple[SubscriptionService, LiveServer]:
    service = SubscriptionService(store)
    await service.start()
    server = LiveServer(mount(service))
    await server.__aenter__()
    return service, server


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    memory = MemoryStore()
    await memory.start()
    try:
        yield memory
    finally:
        await memory.aclose()


@pytest.fixture
async def h(store: MemoryStore) -> AsyncIterator[Harness]:
    service, server = await start_harness(store)
    client = httpx.AsyncClient(timeout=10)
    try:
        yield Harness(store, service, server.url, client)
    finally:
        await client.aclose()
        await server.__aexit__()
        await service.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    async with LiveServer(receiver_app(recv)) as server:
        recv.url = f"{server.url}/webhook"
        yield recv
