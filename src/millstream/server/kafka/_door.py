"""The Kafka door on a socket: an asyncio TCP server whose connections (``_connection``) hand
each request frame to the broker's ``dispatch`` (``_broker``), started and stopped by the node.

Stopping: the listener closes, parked JoinGroup/SyncGroup requests are answered, every
connection stops reading and answers the requests it has read (in-flight produces are committed
and answered; parked fetches answer at once, since the node has closed the store's notifier),
then the connections close. After ``graceful_timeout``
seconds, or on ``force_exit``, whatever is still running is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from millstream.auth import Authenticator
from millstream.log import Membership, Store

from .._tls import Tls
from ._broker import Broker
from ._connection import KafkaConnection
from ._settings import KafkaSettings

__all__ = ["KafkaDoor"]

logger = logging.getLogger("millstream.server.kafka")


class KafkaDoor:
    """Serves the Kafka protocol for ``store`` on ``settings.host:port``; ``auth`` enables
    SASL logins (required when ``auth.required``); one broker of a cluster with ``members``
    (``_brokers``)."""

    def __init__(
        self,
        store: Store,
        settings: KafkaSettings | None = None,
        auth: Authenticator | None = None,
        tls: Tls | None = None,
        *,
        members: Membership | None = None,
    ) -> None:
        self.store = store
        self.tls = tls
        self.settings = settings = settings or KafkaSettings()
        self.connections: set[KafkaConnection] = set()
        self.broker = Broker(store, settings, auth, members)
        self._server: asyncio.Server | None = None
        self._port = settings.port
        self._force = asyncio.Event()

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the address cannot be bound."""
        settings = self.settings
        broker = self.broker
        await broker.start()
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.BaseProtocol:
            return KafkaConnection(settings, broker.dispatch, self.connections)

        self._server = await loop.create_server(
            connection if self.tls is None else self.tls.wrap(connection),
            host=settings.host,
            port=settings.port,
            backlog=1024,
        )
        for sock in self._server.sockets:
            self._port = broker.brokers.port = int(sock.getsockname()[1])
            break

    # -- addresses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        """``HOST:PORT`` the door listens on."""
        return _host_port(self.settings.host, self._port)

    @property
    def advertised(self) -> str:
        """``HOST:PORT`` Metadata gives clients (the advertised host, the bound port)."""
        return _host_port(self.settings.advertised_host or self.settings.host, self._port)

    @property
    def url(self) -> str:
        return f"kafka://{self.address}"

    # -- stopping ------------------------------------------------------------------------------

    def force_exit(self) -> None:
        self._force.set()

    async def aclose(self) -> None:
        """Stop listening, answer what was read, close every connection."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        if self.tls is not None:
            self.tls.close()
        await self.broker.aclose()  # parked group requests answer now
        connections = list(self.connections)
        for connection in connections:
            connection.stop_reading()
        drained: asyncio.Future[list[None]] = asyncio.gather(*(c.drained() for c in connections))
        forced: asyncio.Future[bool] = asyncio.ensure_future(self._force.wait())
        waiting: list[asyncio.Future[Any]] = [drained, forced]
        try:
            await asyncio.wait(
                waiting,
                timeout=self.settings.graceful_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            forced.cancel()
        for connection in list(self.connections):
            connection.close()
        if not drained.done():
            logger.error("dropping Kafka requests still running after the graceful timeout")
            drained.cancel()
        await asyncio.gather(drained, return_exceptions=True)
        await server.wait_closed()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
