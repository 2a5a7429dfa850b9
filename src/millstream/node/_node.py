"""The node: owns the store, runs the HTTP and Kafka doors and the services over it.

Start order: the security check (``insecure_reason``), the store, cluster membership (on a
shared store), expiry reclaiming, the authenticator's recheck of tokens in use, each service (in
``build_services`` order), then the doors start listening and, in a cluster, their addresses
are published. Stop order is the reverse, beginning with leaving the cluster (so the other
nodes stop sending clients here) and the store's notifier, so that live readers of both doors
(long-polls, SSE, parked Kafka fetches) answer at once: the doors stop listening and drain
in-flight requests (appends and produces are answered), the services close in reverse order
(releasing their leases), and the store closes last.

On a shared store (``Store.shared``: ``PostgresStore``) the node is one of a cluster: it
heartbeats in ``Membership`` (which the Kafka door advertises as brokers) and runs services
that must run once under ``RunOnce`` (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from millstream import __version__
from millstream.auth import Authenticator
from millstream.log import Membership, Store, reclaim_forever
from millstream.server._tls import Tls, server_context
from millstream.server.http import DurableStreamsApp, HttpDoor, HttpGate, create_app
from millstream.server.kafka import KafkaDoor, KafkaSettings
from millstream.services import Route, Service

from ._guard import AdminOnly
from ._metrics import METRICS_PATH, MetricsRoute
from ._options import NodeOptions
from ._security import InsecureBind, insecure_reason
from ._services import build_services

__all__ = ["Node"]

logger = logging.getLogger("millstream.node")


class Node:
    """One store, two front doors, the services.

    >>> from millstream.log import MemoryStore
    >>> node = Node(MemoryStore(), NodeOptions(port=0, kafka_port=0))
    >>> # await node.start(); print(node.http_url, node.kafka_url); await node.aclose()

    ``services=None`` builds them from ``options`` (``build_services``). The HTTP app
    (``http_app``) also mounts in a Starlette/FastAPI app: pass ``listen_http=False`` to
    ``start``/``running`` and let the host app serve it.
    """

    def __init__(
        self,
        store: Store,
        options: NodeOptions | None = None,
        *,
        services: Sequence[Service] | None = None,
    ) -> None:
        self.store = store
        self.options = options = options or NodeOptions()
        self.members: Membership | None = None
        if store.shared:
            name = options.node_name or _default_name()
            self.members = Membership(store, name, ttl=options.cluster_ttl)
        #: tokens for both doors and the services (required or not: ``require_auth``)
        self.auth = Authenticator(store, required=options.require_auth, limits=options.limits)
        self.gate = HttpGate(self.auth)
        self.services: list[Service] = list(
            build_services(
                store, options, self.gate, self.members, kafka_address=self._kafka_address
            )
            if services is None
            else services
        )
        routes = [
            route if service.authenticates else Route(route.prefix, AdminOnly(route.app, self.gate))
            for service in self.services
            for route in service.routes()
        ]
        if options.metrics:
            routes.append(Route(METRICS_PATH, MetricsRoute(self, self.gate)))
        self.http_app: DurableStreamsApp = create_app(
            store,
            long_poll_timeout=options.long_poll_timeout,
            max_body_size=options.max_body_size,
            sse_reconnect_seconds=options.sse_reconnect_seconds,
            routes=routes,
            health=self.health,
            public_url=options.public_url,
            gate=self.gate,
        )
        self.http_app.access_log = options.access_log
        self.tracer: Any = None
        if options.otel:
            from ._tracing import tracer_from_environment

            self.tracer = self.http_app.tracer = tracer_from_environment()
        self._tls: dict[str, Tls] = {}
        if options.tls_cert or options.tls_key:
            if not (options.tls_cert and options.tls_key):
                raise ValueError("TLS needs both a certificate (tls_cert) and its key (tls_key)")
            context = server_context(options.tls_cert, options.tls_key)
            self._tls = {"http": Tls(context, "http"), "kafka": Tls(context, "kafka")}
        self.http_door: HttpDoor | None = None
        self.kafka_door: KafkaDoor | None = None
        self._started: list[Service] = []
        self._store_started = False
        self._reclaimer: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, listen_http: bool = True) -> None:
        """Start the store, the services and the doors; on failure, stop what started and
        re-raise (``OSError`` when a door's address is taken)."""
        try:
            await self._start(listen_http)
        except BaseException:
            await self.aclose()
            raise

    async def _start(self, listen_http: bool) -> None:
        options = self.options
        reason = insecure_reason(options, listen_http=listen_http)
        if reason is not None:
            raise InsecureBind(reason)
        self.started_at = time.monotonic()
        await self.store.start()
        self._store_started = True
        if self.members is not None:
            await self.members.start()
        self._reclaimer = asyncio.ensure_future(reclaim_forever(self.store))
        await self.auth.start()
        for service in self.services:
            await service.start()
            self._started.append(service)
        if listen_http:
            self.http_door = HttpDoor(
                self.http_app,
                host=options.host,
                port=options.port,
                fast_path=options.http_fast_path and self.tracer is None,
                graceful_timeout=options.graceful_timeout,
                tls=self._tls.get("http"),
            )
            await self.http_door.start()
        if options.kafka:
            settings = KafkaSettings(
                host=options.host,
                port=options.kafka_port,
                advertised_host=options.kafka_advertised_host or options.host,
                max_request_size=options.kafka_max_request_size,
                auto_create_topics=options.kafka_auto_create_topics,
                idle_timeout=options.kafka_idle_timeout,
                frame_timeout=options.kafka_frame_timeout,
                graceful_timeout=options.graceful_timeout,
            )
            self.kafka_door = KafkaDoor(
                self.store, settings, self.auth, self._tls.get("kafka"), members=self.members
            )
            self.kafka_door.broker.tracer = self.tracer
            await self.kafka_door.start()
        if self.members is not None:
            self.members.publish(self._addresses())

    def _addresses(self) -> dict[str, str]:
        """Where the other nodes of a cluster reach this one's doors."""
        addresses: dict[str, str] = {}
        if self.http_door is not None:
            host = self.options.host
            if host in ("0.0.0.0", "::", ""):
                host = self.options.kafka_advertised_host or socket.gethostname()
            scheme = "https" if self._tls.get("http") is not None else "http"
            addresses["http"] = f"{scheme}://{_host(host)}:{self.http_door.port}"
        if self.kafka_door is not None:
            addresses["kafka"] = self.kafka_door.advertised
        return addresses

    async def aclose(self) -> None:
        """Stop everything that started, in reverse; idempotent."""
        if self.members is not None:
            await self.members.aclose()  # the other nodes stop routing clients here
        if self._store_started:
            self.store.notifier.close()  # live readers of both doors answer now
        doors = [door for door in (self.http_door, self.kafka_door) if door is not None]
        self.http_door = self.kafka_door = None
        results = await asyncio.gather(*(door.aclose() for door in doors), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.error("stopping a door failed", exc_info=result)
        await self.auth.aclose()
        while self._started:
            service = self._started.pop()
            try:
                await service.aclose()
            except Exception:
                logger.exception("closing service %s failed", service.name)
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reclaimer
            self._reclaimer = None
        if self._store_started:
            self._store_started = False
            await self.store.aclose()

    def force_exit(self) -> None:
        """Stop waiting for in-flight requests (a second SIGTERM/SIGINT)."""
        for door in (self.http_door, self.kafka_door):
            if door is not None:
                door.force_exit()

    @contextlib.asynccontextmanager
    async def running(self, *, listen_http: bool = True) -> AsyncIterator[Node]:
        """``start`` … ``aclose``; as a Starlette lifespan: ``lambda app: node.running(
        listen_http=False)`` with ``Mount("/streams", app=node.http_app)``."""
        await self.start(listen_http=listen_http)
        try:
            yield self
        finally:
            await self.aclose()

    # -- what it serves ----------------------------------------------------------------------

    def _kafka_address(self) -> str | None:
        return None if self.kafka_door is None else self.kafka_door.advertised

    @property
    def http_url(self) -> str | None:
        """``http://HOST:PORT`` once the HTTP door listens."""
        return None if self.http_door is None else self.http_door.url

    @property
    def kafka_url(self) -> str | None:
        """``kafka://HOST:PORT`` once the Kafka door listens."""
        return None if self.kafka_door is None else self.kafka_door.url

    def startup_line(self) -> str:
        """``millstream listening on http://HOST:PORT and kafka://HOST:PORT (store: ...)``,
        with the ports actually bound (tests and scripts parse it)."""
        urls = [url for url in (self.http_url, self.kafka_url) if url is not None]
        door = self.kafka_door
        if door is not None and door.advertised != door.address:
            urls[-1] += f" advertised as {door.advertised}"
        notes = [f"store: {self.store.description}"]
        if self._tls:
            notes.append("TLS")
        if self.options.require_auth:
            notes.append("tokens required")
        elif self.options.insecure and insecure_reason(self.options, insecure=False):
            notes.append("INSECURE: open to anyone who can connect")
        if self.http_door is not None and self.http_door.note:
            notes.append(self.http_door.note)
        if self.tracer is not None:
            notes.append("tracing requests (OpenTelemetry; HTTP fast path off)")
        return f"millstream listening on {' and '.join(urls)} ({'; '.join(notes)})"

    def tls_by_door(self) -> dict[str, Tls]:
        """Each door's TLS (none without ``tls_cert``): its failed handshakes count."""
        return dict(self._tls)

    async def health(self) -> dict[str, Any]:
        """What ``GET /health`` adds: ``version``, ``uptime_seconds`` (the LLM seed's shape)
        and each service's health under ``services``; the status is ``"degraded"`` when a
        service reports anything but ``ok`` (or fails to answer)."""
        services: dict[str, Any] = {}
        status = "ok"
        for service in self.services:
            try:
                report = await service.health()
            except Exception as exc:
                logger.exception("health of service %s failed", service.name)
                report = {"status": "error", "error": str(exc)}
            services[service.name] = report
            if report.get("status") != "ok":
                status = "degraded"
        result: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
            "services": services,
        }
        if self.kafka_door is not None:
            result["kafka"] = self.kafka_door.advertised
        if self.members is not None:
            result["cluster"] = {
                "node_id": self.members.node_id,
                "name": self.members.name,
                "nodes": [
                    {"node_id": n.node_id, "name": n.name, **n.addresses}
                    for n in self.members.live()
                ],
            }
        return result


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
