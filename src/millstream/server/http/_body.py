"""Reading an ASGI request body (plain or chunked) with a hard size cap, never buffering past it.

Shared by the stream routes (``server/http``) and the subscription routes
(``services/subscriptions``); each turns ``BodyTooLarge`` into its own 413 answer.
"""

from __future__ import annotations

from ._types import Receive

__all__ = ["BodyTooLarge", "ClientDisconnected", "read_body"]

# After refusing an oversize body we keep reading (and discarding) this much more so the client,
# still sending, gets to read the 413 instead of a reset connection.
_DRAIN_LIMIT = 8 << 20


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


class BodyTooLarge(Exception):
    """The body is larger than the route allows (``max_size`` bytes)."""

    def __init__(self, max_size: int) -> None:
        super().__init__(f"request body exceeds the server's limit of {max_size} bytes")
        self.max_size = max_size


async def read_body(receive: Receive, max_size: int, declared: int | None) -> bytes:
    """The whole request body; ``BodyTooLarge`` once it would exceed ``max_size``."""
    if declared is not None and declared > max_size:
        await _drain(receive, 0)
        raise BodyTooLarge(max_size)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_size:
                if message.get("more_body", False):
                    await _drain(receive, size)
                raise BodyTooLarge(max_size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


async def _drain(receive: Receive, already: int) -> None:
    drained = already
    while drained < _DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
