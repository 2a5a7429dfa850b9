"""Service routes on a node that requires tokens: those of a service that does not check
tokens itself (``Service.authenticates``) are served to ``admin:`` tokens only.

A new service is thus safe by default: its routes are open on an open (loopback) node, and
closed to everyone but administrators on one that requires tokens, until it checks scopes of
its own (as the LLM gateway and the subscriptions do).
"""

from __future__ import annotations

from millstream.server.http import HttpGate
from millstream.server.http._errors import HttpError
from millstream.server.http._headers import request_headers
from millstream.server.http._responses import error_answer, send_answer
from millstream.server.http._types import ASGIApp, Receive, Scope, Send

__all__ = ["AdminOnly"]


class AdminOnly:
    """``app`` behind the gate: 401/429 without a valid token, 403 without ``admin:``."""

    def __init__(self, app: ASGIApp, gate: HttpGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate
        if scope["type"] != "http" or not gate.auth.required:
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        client = scope.get("client")
        host = str(client[0]) if client else None
        what = f"{scope.get('method', 'GET')} {scope.get('path', '')}"
        try:
            await gate.require_admin(headers, host, what)
        except HttpError as exc:
            await send_answer(send, error_answer(exc, head=scope.get("method") == "HEAD"))
            return
        await self.app(scope, receive, send)
