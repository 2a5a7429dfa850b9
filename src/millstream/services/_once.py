"""``RunOnce``: a service that runs on one node of a cluster at a time, and moves when it dies.

On a shared store (several nodes on one ``PostgresStore``) a service such as subscriptions
must not run on every node: each would deliver the same webhooks and write the same state.
The node wraps such a service (``Service.run_once``) in ``RunOnce``: every node campaigns for
the ``Lease`` named after the service; the holder builds the service and starts it, and stops
it as soon as it loses the lease. When the holder dies, another node takes the lease over
after its ``ttl`` and starts its own copy, which resumes from the state in the store.

The service's HTTP routes are mounted on every node. A request reaching a node that does not
run the service is forwarded to the node that does (its HTTP address comes from
``Membership``), with the client's ``Host`` kept, so URLs the service builds name what the
client used. While no node holds the lease, or the holder cannot be reached, the answer is 503
with ``Retry-After`` (retryable), never a 500. A forwarded request is never forwarded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import orjson

from millstream.log import Lease, Membership
from millstream.server.http._types import ASGIApp, Receive, Scope, Send

from ._service import Route, Service

__all__ = ["FORWARDED_HEADER", "RunOnce"]

log = logging.getLogger("millstream.services")

#: Set on a request one node forwards to another (its value: the forwarding node's name).
FORWARDED_HEADER = b"millstream-forwarded-by"

_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
}


class RunOnce(Service):
    """Runs ``make(lease)`` while this node holds ``lease``; forwards its routes otherwise.

    ``make`` builds a fresh service each time the lease is won (a service is started once);
    it gets the lease so that it can fence its writes with ``lease.fence()``.
    ``forward_timeout``: the longest silence while waiting for the holder's answer (a
    streamed LLM answer may pause between tokens; the holder has its own timeouts).
    """

    def __init__(
        self,
        make: Callable[[Lease], Service],
        lease: Lease,
        members: Membership,
        *,
        forward_timeout: float = 600.0,
    ) -> None:
        self._make = make
        self.lease = lease
        self.members = members
        self.active: Service | None = None
        self._template = template = make(lease)  # routes are mounted once: same in each copy
        self.name = template.name
        self._prefixes = [route.prefix for route in template.routes()]
        self._forward_timeout = forward_timeout
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def routes(self) -> Sequence[Route]:
        return [Route(prefix, self._app(prefix)) for prefix in self._prefixes]

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._forward_timeout, connect=2.0), follow_redirects=False
        )
        self._tasks = [
            asyncio.ensure_future(self.lease.campaign()),
            asyncio.ensure_future(self._lead()),
        ]

    async def _lead(self) -> None:
        """Run the service whenever this node holds the lease."""
        while True:
            await self.lease.wait_held()
            service = self._make(self.lease)
            try:
                await service.start()
            except Exception:
                log.exception("starting %s failed; giving the lease up", self.name)
                with contextlib.suppress(Exception):
                    await service.aclose()
                await self.lease.release()
                await asyncio.sleep(self.lease.ttl)  # let another node try
                continue
            log.info("%s runs on this node now", self.name)
            self.active = service
            try:
                await self.lease.wait_lost()
            finally:
                self.active = None
                await service.aclose()
            log.info("%s stopped on this node: the lease moved", self.name)

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.active is not None:
            service, self.active = self.active, None
            await service.aclose()
        with contextlib.suppress(Exception):
            await self.lease.release()  # another node takes over at its next try
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def describe(self) -> str | None:
        line = self._template.describe()
        return None if line is None else f"{line} (on one node of the cluster at a time)"

    async def health(self) -> dict[str, Any]:
        active = self.active
        if active is not None:
            return {**(await active.health()), "leader": self.lease.holder}
        return {"status": "ok", "leader": self.lease.leader}

    # -- requests ----------------------------------------------------------------------------

    def _app(self, prefix: str) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            active = self.active
            if active is not None:
                for route in active.routes():
                    if route.prefix == prefix:
                        await route.app(scope, receive, send)
                        return
            await self._forward(scope, receive, send)

        return app

    def _leader_url(self) -> str | None:
        leader = self.lease.leader
        if leader is None or leader == self.lease.holder:
            return None
        node = self.members.named(leader)
        return None if node is None else node.addresses.get("http")

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = [
            (bytes(name).lower(), bytes(value)) for name, value in scope.get("headers", ())
        ]
        target = self._leader_url()
        client = self._client
        if any(name == FORWARDED_HEADER for name, _ in headers) or target is None or not client:
            await _unavailable(send, f"{self.name} is moving to another node; retry")
            return
        root_path: str = scope.get("root_path", "")
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        if root_path and raw.startswith(root_path.encode()):
            raw = raw[len(root_path.encode()) :]
        url = target.rstrip("/") + raw.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + bytes(scope["query_string"]).decode("latin-1")
        headers = [(n, v) for n, v in headers if n not in _HOP_BY_HOP]
        headers.append((FORWARDED_HEADER, self.lease.holder.encode()))
        request = client.build_request(
            scope.get("method", "GET"), url, headers=headers, content=_body(receive)
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _unavailable(send, f"{self.name} runs on a node that cannot be reached: {exc}")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (name.lower(), value)
                        for name, value in response.headers.raw
                        if name.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError:
            pass  # the leader went away mid-answer: the client sees a cut response
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _unavailable(send: Send, message: str) -> None:
    body = orjson.dumps({"error": {"code": "UNAVAILABLE", "message": message}})
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
