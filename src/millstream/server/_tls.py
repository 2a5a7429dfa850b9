"""TLS for both front doors: a server context from a certificate and key, and an acceptor that
runs each connection's handshake before the door's protocol sees it.

Why not ``create_server(ssl=...)``: a failed handshake there (a plaintext client on the TLS
port, an expired certificate, a scanner) vanishes without a trace, logged only in asyncio's
debug mode. ``Tls.wrap`` turns a protocol factory into one whose connections are handed to the
loop's own TLS protocol (uvloop's or asyncio's, the one ``create_server(ssl=...)`` uses) with a
future we watch: a failure is counted (``Tls.failures``), logged at INFO with the peer, and
the connection closed; a success hands the TLS transport to the door's protocol, which sees an
ordinary connection (``get_extra_info("sslcontext")`` tells it that it is TLS).
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
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
        self._pending: set[asyncio.Transport] = set()

    def wrap(self, factory: Callable[..., asyncio.BaseProtocol]) -> Callable[..., asyncio.Protocol]:
        """A protocol factory for ``create_server`` whose connections do TLS first (the door's
        protocol may be a ``BufferedProtocol``: the loop's TLS protocol fills its buffer)."""

        def accept(*args: Any, **kwargs: Any) -> asyncio.Protocol:
            return _Acceptor(self, lambda: factory(*args, **kwargs))

        return accept

    def close(self) -> None:
        """Drop handshakes still in progress (shutdown)."""
        for transport in list(self._pending):
            transport.abort()


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's own TLS protocol: uvloop's (C) on uvloop, asyncio's otherwise."""
    uvloop: Any
    try:
        import uvloop
        import uvloop.loop
    except ImportError:  # pragma: no cover - uvloop is there wherever uvicorn[standard] is
        uvloop = None
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        return uvloop.loop.SSLProtocol
    sslproto: Any = asyncio.sslproto  # SSLProtocol is not in typeshed
    return sslproto.SSLProtocol


class _Acceptor(asyncio.Protocol):
    """Puts the loop's TLS protocol between a fresh TCP connection and the door's protocol.

    This is what ``loop.start_tls`` does, but synchronously in ``connection_made``: both loops
    start reading right after it returns (uvloop even if the protocol paused reading), so the
    TLS protocol must already be in place to receive the ClientHello.
    """

    def __init__(self, tls: Tls, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._tls = tls
        self._factory = factory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        tls = self._tls
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        secure = _ssl_protocol_class(loop)(
            loop,
            self._factory(),
            tls.context,
            waiter,
            server_side=True,
            call_connection_made=True,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
        )
        raw.set_protocol(secure)
        secure.connection_made(raw)
        tls._pending.add(raw)
        peer = raw.get_extra_info("peername")

        def handshaken(done: asyncio.Future[None]) -> None:
            tls._pending.discard(raw)
            exc = None if done.cancelled() else done.exception()
            if exc is None and not done.cancelled():
                tls.handshakes += 1
                return
            tls.failures += 1
            logger.info(
                "TLS handshake with %s on the %s door failed: %s",
                peer,
                tls.door,
                exc or "cancelled",
                extra={"client": str(peer), "door": tls.door, "reason": "tls_handshake"},
            )

        waiter.add_done_callback(handshaken)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - replaced at once
        pass
