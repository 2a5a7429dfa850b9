"""TLS for both front doors: a server context from a certificate and key, and an acceptor that
runs each connection's handshake before the door's protocol sees it.

Why not ``create_server(ssl=...)``: a failed handshake there (a plaintext client on the TLS
port, an expired certificate, a scanner) vanishes without a trace, logged only in asyncio's
debug mode. ``Tls.wrap`` turns a protocol factory into one whose connections first run
``loop.start_tls``; a failure is counted (``Tls.failures``), logged at INFO with the peer, and
the connection closed; a success hands the TLS transport to the door's protocol, which sees an
ordinary connection (``get_extra_info("sslcontext")`` tells it that it is TLS).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

__all__ = ["Tls", "server_context"]

logger = logging.getLogger("millstream.server.tls")

HANDSHAKE_TIMEOUT = 10.0


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context for ``cert`` (PEM, the chain) and ``key`` (PEM); TLS 1.2 or later."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


class Tls:
    """One door's TLS: its context and how many handshakes failed."""

    def __init__(self, context: ssl.SSLContext, door: str) -> None:
        self.context = context
        self.door = door
        self.failures = 0
        self.handshakes = 0
        self._pending: set[asyncio.Task[None]] = set()

    def wrap(self, factory: Callable[..., asyncio.Protocol]) -> Callable[..., asyncio.Protocol]:
        """A protocol factory for ``create_server`` whose connections do TLS first."""

        def accept(*args: Any, **kwargs: Any) -> asyncio.Protocol:
            return _Acceptor(self, lambda: factory(*args, **kwargs))

        return accept

    def close(self) -> None:
        """Drop handshakes still in progress (shutdown)."""
        for task in list(self._pending):
            task.cancel()


class _Acceptor(asyncio.Protocol):
    """Holds a fresh TCP connection until its TLS handshake is done."""

    def __init__(self, tls: Tls, factory: Callable[[], asyncio.Protocol]) -> None:
        self._tls = tls
        self._factory = factory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        raw.pause_reading()  # nothing may be read before start_tls takes the transport over
        task = asyncio.get_running_loop().create_task(self._handshake(raw))
        self._tls._pending.add(task)
        task.add_done_callback(self._tls._pending.discard)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - reading is paused
        pass

    async def _handshake(self, raw: asyncio.Transport) -> None:
        tls = self._tls
        loop = asyncio.get_running_loop()
        protocol = self._factory()
        peer = raw.get_extra_info("peername")
        try:
            secure = await loop.start_tls(
                raw,
                protocol,
                tls.context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except asyncio.CancelledError:
            raw.close()
            raise
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError, RuntimeError) as exc:
            tls.failures += 1
            logger.info(
                "TLS handshake with %s on the %s door failed: %s",
                peer,
                tls.door,
                exc,
                extra={"client": str(peer), "door": tls.door, "reason": "tls_handshake"},
            )
            raw.close()
            return
        if secure is None:  # the peer went away during the handshake
            raw.close()
            return
        tls.handshakes += 1
        protocol.connection_made(secure)
