"""``SubscriptionService``: the subscription engine as a node service (PROTOCOL.md §6, §7).

The node mounts its one route, ``/v1/stream/__ds``, on the HTTP door; every request below it is
answered with ``subpath`` (the path after ``__ds/``) and ``stream_root`` (the absolute URL of the
stream root, which callback and JWKS URLs use)::

    service = SubscriptionService(store)
    await service.start()            # after store.start()
    app = create_app(store, routes=service.routes())
    ...
    await service.aclose()           # before store.aclose()

Every answer is JSON; errors are ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson

from millstream.log import KvWrite, LogError
from millstream.log import Store as LogStore
from millstream.server.http import STREAM_PREFIX, HttpGate, stream_url_root
from millstream.server.http._body import BodyTooLarge, ClientDisconnected, read_body
from millstream.server.http._errors import HttpError
from millstream.server.http._headers import request_headers
from millstream.server.http._types import Receive, Scope, Send

from .._service import Route, Service
from ._config import parse_config, parse_stream_path
from ._errors import SubscriptionError
from ._service import SubscriptionEngine, WakeRequest

__all__ = ["SubscriptionService"]

log = logging.getLogger("millstream.subscriptions")

MAX_BODY_BYTES = 1 << 20
MAX_ID_LENGTH = 256
_ACTIONS = ("callback", "claim", "ack", "release")
_WAKE_ACTIONS = ("callback", "ack", "release")  # authenticated by the wake's own token


ROUTE_PREFIX = STREAM_PREFIX + "__ds"


class SubscriptionService(Service):
    """Handles the reserved ``__ds`` control routes for one store.

    ``public_url`` (the server's externally visible root, as the HTTP door's) replaces the
    request's ``Host`` in the stream root that callback and JWKS URLs are built from.
    ``fence`` (on a cluster, ``Lease.fence`` of ``RunOnce``) is committed with every state
    write, so a node that lost the lease cannot overwrite its successor's state.
    """

    name = "subscriptions"
    run_once = True
    authenticates = True

    def __init__(
        self,
        store: LogStore,
        *,
        public_url: str | None = None,
        gate: HttpGate | None = None,
        fence: Callable[[], KvWrite] | None = None,
    ) -> None:
        self.public_url = public_url
        #: on a node that requires tokens, managing and claiming subscriptions needs an
        #: ``admin:`` token (wake tokens keep authenticating callback, ack and release)
        self.gate = gate
        self.engine = SubscriptionEngine(store, fence=fence)

    def routes(self) -> list[Route]:
        return [Route(ROUTE_PREFIX, self.asgi)]

    async def start(self) -> None:
        """Load keys and subscriptions and start watching the store; call after store.start()."""
        await self.engine.start()

    async def aclose(self) -> None:
        await self.engine.aclose()

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "subscriptions": self.engine.subscription_count}

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The mounted route: ``{root_path}/v1/stream/__ds[/...]``."""
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        host = None
        for name, value in scope.get("headers", ()):
            if name == b"host":
                host = bytes(value)  # the last one, as the stream routes take it
        root = stream_url_root(
            host, scope.get("scheme", "http"), scope.get("server"), root_path, self.public_url
        )
        await self(scope, receive, send, subpath=path[len(ROUTE_PREFIX) + 1 :], stream_root=root)

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, *, subpath: str, stream_root: str
    ) -> None:
        if not stream_root.endswith("/"):
            stream_root += "/"
        method = str(scope.get("method", "GET")).upper()
        try:
            status, body, headers = await self._dispatch(
                scope, method, subpath, receive, stream_root
            )
        except ClientDisconnected:
            return
        except SubscriptionError as exc:
            status, body, headers = exc.status, exc.body(), {}
            if exc.status == 503:
                headers = {"retry-after": "1"}
            if exc.status == 405:
                headers = {"allow": str(exc.extra.pop("allow", ""))}
                body = exc.body()
        except LogError as exc:
            status = 503 if exc.retryable else 409
            body = {"error": {"code": "UNAVAILABLE", "message": exc.message}}
            headers = {"retry-after": "1"} if exc.retryable else {}
        await _respond(send, status, body, headers, head=method == "HEAD")

    async def _dispatch(
        self, scope: Scope, method: str, subpath: str, receive: Receive, stream_root: str
    ) -> tuple[int, Any, dict[str, str]]:
        parts = subpath.strip("/").split("/")
        if parts == ["jwks.json"]:
            _allow(method, "GET, HEAD")
            return (
                200,
                self.engine.keys.jwks(),
                {
                    "content-type": "application/jwk-set+json",
                    "cache-control": "public, max-age=300",
                },
            )
        if len(parts) < 2 or parts[0] != "subscriptions":
            raise SubscriptionError("NOT_FOUND", f"no control route __ds/{subpath}", status=404)
        sub_id = _subscription_id(parts[1])
        rest = parts[2:]
        if not (len(rest) == 1 and rest[0] in _WAKE_ACTIONS):
            await self._require_admin(scope, method, subpath)
        engine = self.engine
        if not rest:
            if method == "PUT":
                config = parse_config(await _read_json(receive))
                sub, created = await engine.put(sub_id, config, stream_root)
                return (201 if created else 200), await engine.describe(sub, stream_root), {}
            if method in ("GET", "HEAD"):
                return 200, await engine.describe(engine.get(sub_id), stream_root), {}
            if method == "DELETE":
                await engine.delete(sub_id)
                return 204, None, {}
            _allow(method, "GET, HEAD, PUT, DELETE")
        if rest == ["streams"]:
            _allow(method, "POST")
            body = await _read_json(receive)
            streams = body.get("streams") if isinstance(body, dict) else None
            if not isinstance(streams, list) or not streams:
                raise SubscriptionError(
                    "INVALID_REQUEST", "streams must be a non-empty array of stream paths"
                )
            paths = [parse_stream_path(s, "streams[]") for s in streams]
            await engine.add_streams(sub_id, paths)
            return 204, None, {}
        if rest[0] == "streams":
            _allow(method, "DELETE")
            path = parse_stream_path(unquote("/".join(rest[1:])), "stream path")
            await engine.remove_stream(sub_id, path)
            return 204, None, {}
        if len(rest) == 1 and rest[0] in _ACTIONS:
            _allow(method, "POST")
            action = rest[0]
            if action == "claim":
                body = await _read_json(receive, empty_ok=True)
                worker = body.get("worker") if isinstance(body, dict) else None
                if not isinstance(worker, str) or not worker or len(worker) > MAX_ID_LENGTH:
                    raise SubscriptionError("INVALID_REQUEST", "worker must be a non-empty string")
                return 200, await engine.claim(sub_id, worker), {}
            token = _bearer(scope)
            raw = await _read_json(receive)
            if token is None:
                raise SubscriptionError(
                    "TOKEN_INVALID", "send the token as Authorization: Bearer <token>"
                )
            request = WakeRequest.parse(raw)
            if action == "callback":
                return 200, await engine.callback(sub_id, token, request), {}
            if action == "ack":
                return 200, await engine.ack(sub_id, token, request), {}
            await engine.release(sub_id, token, request)
            return 204, None, {}
        raise SubscriptionError("NOT_FOUND", f"no control route __ds/{subpath}", status=404)

    async def _require_admin(self, scope: Scope, method: str, subpath: str) -> None:
        gate = self.gate
        if gate is None or not gate.auth.required:
            return
        headers = request_headers(scope)
        client = scope.get("client")
        host = str(client[0]) if client else None
        what = f"{method} __ds/{subpath}"
        try:
            await gate.require_admin(headers, host, what)
        except HttpError as exc:
            code = {401: "TOKEN_INVALID", 403: "FORBIDDEN"}.get(exc.status, "RATE_LIMITED")
            raise SubscriptionError(code, exc.message, status=exc.status) from None


def _allow(method: str, allowed: str) -> None:
    if method not in [m.strip() for m in allowed.split(",")]:
        raise SubscriptionError(
            "METHOD_NOT_ALLOWED", f"{method} is not allowed here", allow=allowed
        )


def _subscription_id(segment: str) -> str:
    sub_id = unquote(segment)
    if not sub_id or len(sub_id) > MAX_ID_LENGTH or any(ord(ch) < 0x20 for ch in sub_id):
        raise SubscriptionError("INVALID_REQUEST", "the subscription id is empty or malformed")
    return sub_id


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            text: str = bytes(value).decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token:
                return token
            return None
    return None


async def _read_json(receive: Receive, *, empty_ok: bool = False) -> Any:
    """The request body parsed as JSON, at most ``MAX_BODY_BYTES``."""
    try:
        raw = await read_body(receive, MAX_BODY_BYTES, None)
    except BodyTooLarge as exc:
        raise SubscriptionError("PAYLOAD_TOO_LARGE", str(exc)) from exc
    if not raw.strip():
        if empty_ok:
            return {}
        raise SubscriptionError("INVALID_REQUEST", "the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SubscriptionError("INVALID_REQUEST", "the body is not valid JSON") from exc


async def _respond(
    send: Send, status: int, body: Any, headers: dict[str, str], *, head: bool
) -> None:
    payload = b"" if status == 204 else orjson.dumps(body)
    out = {"content-type": "application/json", "cache-control": "no-store", **headers}
    if status == 204:
        out.pop("content-type")
    out["content-length"] = str(len(payload))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in out.items()],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else payload})
