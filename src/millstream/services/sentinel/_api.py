"""The Sentinel's REST API under ``/api/v1`` (the reference core's routes), on the HTTP door.

- ``GET /api/v1/anomalies``: newest first; filters ``service``, ``model``, ``severity`` (one or a
  comma list), ``anomaly_type``, ``since`` (ISO 8601, on the anomaly's time), ``limit`` (1-1000,
  default 100).
- ``GET /api/v1/telemetry``: recent telemetry events, newest first, personal data masked;
  filters ``service``, ``model``, ``since``, ``limit``.
- ``POST /api/v1/events``: one event object or an array of up to 1,000; every one is validated
  as the Sentinel validates what it reads (schema and limits); all valid: appended to the
  telemetry topic in the SDK's wire format, ``202``; otherwise nothing is appended, ``400``.

Answers are JSON; errors are ``{"error": {"code": ..., "message": ...}}`` with a 4xx status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from millstream.log import AppendRequest, LogError, StreamGone, StreamNotFound
from millstream.server.http._body import BodyTooLarge, ClientDisconnected, read_body
from millstream.server.http._types import Receive, Scope, Send
from millstream.telemetry import (
    AnomalyType,
    Severity,
    TelemetryEvent,
    ValidationError,
)
from millstream.telemetry._events import parse_timestamp

from ._validation import sanitized, validate

if TYPE_CHECKING:
    from ._service import SentinelService

__all__ = ["SentinelApi"]

MAX_BODY = 1 << 20
MAX_EVENTS = 1000
MAX_LIMIT = 1000
SCAN_CHUNK = 500
MAX_SCAN = 200_000  # positions looked at per request at most


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class SentinelApi:
    """The ASGI app mounted at ``/api/v1``."""

    def __init__(self, service: SentinelService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root and path.startswith(root):
            path = path[len(root) :]
        method = str(scope.get("method", "GET")).upper()
        headers: dict[str, str] = {}
        try:
            status, body, headers = await self._dispatch(scope, receive, method, path)
        except ClientDisconnected:
            return
        except ApiError as exc:
            status, body = exc.status, exc.body()
            if exc.status == 405:
                headers = {"allow": exc.extra.get("allow", "")}
        except LogError as exc:
            status = 503 if exc.retryable else 409
            body = {"error": {"code": exc.code, "message": str(exc)}}
        await _respond(send, status, body, headers, head=method == "HEAD")

    async def _dispatch(
        self, scope: Scope, receive: Receive, method: str, path: str
    ) -> tuple[int, Any, dict[str, str]]:
        route = path.removeprefix("/api/v1").rstrip("/")
        query = _query(scope)
        if route == "/anomalies":
            _allow(method, "GET, HEAD")
            return 200, await self._anomalies(query), {}
        if route == "/telemetry":
            _allow(method, "GET, HEAD")
            return 200, await self._telemetry(query), {}
        if route == "/events":
            _allow(method, "POST")
            return 202, await self._post_events(scope, receive), {}
        raise ApiError(404, "not_found", f"no route {path}")

    # -- reads ---------------------------------------------------------------------------------

    async def _anomalies(self, query: dict[str, str]) -> dict[str, Any]:
        common = _common_filter(query)
        severities = _severities(query.get("severity"))
        kind = query.get("anomaly_type")
        if kind is not None:
            try:
                kind = AnomalyType(kind.lower().replace("-", "_")).value
            except ValueError:
                raise ApiError(
                    400, "invalid_anomaly_type", f"unknown anomaly_type {kind!r}"
                ) from None
        limit = _limit(query.get("limit"))

        def keep(item: dict[str, Any]) -> bool:
            return (
                (severities is None or item.get("severity") in severities)
                and (kind is None or item.get("anomaly_type") == kind)
                and common(item)
            )

        found = await self._scan([self.service.anomalies_topic], keep, limit)
        return {"data": found, "count": len(found)}

    async def _telemetry(self, query: dict[str, str]) -> dict[str, Any]:
        keep = _common_filter(query)
        limit = _limit(query.get("limit"))
        found = await self._scan(await self.service.sources(), keep, limit)
        found.sort(key=lambda item: str(item.get("timestamp", "")), reverse=True)
        return {
            "data": [sanitized(item) for item in found[:limit]],
            "count": min(limit, len(found)),
        }

    async def _scan(
        self, paths: list[str], keep: Callable[[dict[str, Any]], bool], limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` JSON objects from the ends of ``paths`` that ``keep`` accepts,
        newest first per path."""
        store = self.service.store
        out: list[dict[str, Any]] = []
        for path in paths:
            try:
                info = await store.head(path)
            except (StreamNotFound, StreamGone):
                continue
            end, low, scanned, taken = info.tail, info.log_start, 0, 0
            while end > low and taken < limit and scanned < MAX_SCAN:
                start = max(low, end - SCAN_CHUNK)
                chunk: list[bytes] = []
                position = start
                while position < end:
                    result = await store.read(path, position)
                    if not result.payloads:
                        break
                    chunk.extend(result.payloads[: end - result.start])
                    position = result.start + len(result.payloads)
                for payload in reversed(chunk):
                    try:
                        item = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(item, dict) and keep(item):
                        out.append(item)
                        taken += 1
                        if taken >= limit:
                            break
                scanned += end - start
                end = start
        return out

    # -- writes --------------------------------------------------------------------------------

    async def _post_events(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        declared = None
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise ApiError(400, "invalid_request", "bad Content-Length") from None
        try:
            raw = await read_body(receive, MAX_BODY, declared)
        except BodyTooLarge as exc:
            raise ApiError(413, "payload_too_large", str(exc)) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        if not items:
            raise ApiError(400, "invalid_event", "no events in the body")
        if len(items) > MAX_EVENTS:
            raise ApiError(400, "too_many_events", f"at most {MAX_EVENTS} events per request")
        events: list[TelemetryEvent] = []
        problems: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                events.append(validate(item))
            except ValidationError as exc:
                problems.append({"index": index, "reason": exc.message})
        if problems:
            first = problems[0]
            raise ApiError(
                400,
                "invalid_event",
                f"event {first['index']}: {first['reason']}",
                details=problems,
            )
        topic = self.service.primary_topic
        result = await self.service.store.append(
            topic, AppendRequest([event.to_json() for event in events])
        )
        return {
            "accepted": len(events),
            "topic": topic,
            "event_ids": [str(event.event_id) for event in events],
            "next_offset": result.tail,
        }


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_request", "the query string is not UTF-8") from None
    return {key: values[-1] for key, values in parsed.items()}


def _allow(method: str, allowed: str) -> None:
    if method not in [m.strip() for m in allowed.split(",")]:
        raise ApiError(405, "method_not_allowed", f"{method} is not allowed here", allow=allowed)


def _common_filter(query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The ``service``, ``model`` and ``since`` filters both reads take."""
    service, model = query.get("service"), query.get("model")
    since = _since(query.get("since"))

    def keep(item: dict[str, Any]) -> bool:
        return (
            (service is None or item.get("service_name") == service)
            and (model is None or item.get("model") == model)
            and (since is None or _time_of(item) >= since)
        )

    return keep


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(400, "invalid_limit", f"limit must be an integer, got {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValidationError:
        raise ApiError(
            400, "invalid_time", f"since must be an ISO 8601 time, got {value!r}"
        ) from None


def _severities(value: str | None) -> set[str] | None:
    if value is None:
        return None
    wanted = set()
    for part in value.split(","):
        try:
            wanted.add(Severity(part.strip().lower()).value)
        except ValueError:
            raise ApiError(400, "invalid_severity", f"unknown severity {part!r}") from None
    return wanted


def _time_of(item: dict[str, Any]) -> datetime:
    try:
        return parse_timestamp(str(item.get("timestamp")))
    except ValidationError:
        return datetime.min


async def _respond(
    send: Send, status: int, body: Any, headers: dict[str, str], *, head: bool
) -> None:
    payload = orjson.dumps(body)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})
