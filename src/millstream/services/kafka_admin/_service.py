"""``KafkaAdminService``: the broker's HTTP admin API that the Kafka SDK's ``Admin`` calls,
served on millstream's HTTP port from the same log as both doors.

    GET /v1/topics                              topics (internal ``__`` ones never listed)
    GET /v1/topics/{name}                       one topic, with each partition's offsets
    GET /v1/cluster                             cluster id, brokers, controller
    GET /v1/consumer-groups/{group}/lag         lag per committed partition, and the total
    GET /v1/consumer-groups/{group}/lag/{topic}
    GET /v1/inspect/{topic}?partition=0&offset=&limit=20
    GET /v1/inspect/{topic}/latest?count=10

Answers are JSON in the shapes of ``millstream.kafka`` (``TopicInfo.to_json()`` ...); errors are
``{"error": {"code", "message"}}`` with 400 (a bad parameter or name), 404 (``topic_not_found``,
``partition_not_found``, ``group_not_found``, ``not_found``), 405, or 503 when the store fails.
Path segments are percent-decoded one by one (a group id may hold ``/``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from millstream.kafka import BrokerInfo, ClusterInfo
from millstream.log import InvalidTopic, LogError, Store, TopicNotFound
from millstream.server.http._types import Receive, Scope, Send

from .._service import Route, Service
from ._queries import GroupNotFound, PartitionNotFound, Queries

__all__ = ["MAX_LIMIT", "KafkaAdminService"]

logger = logging.getLogger("millstream.services.kafka_admin")

MAX_LIMIT = 1000  # records one inspection returns at most
_PREFIXES = ("/v1/topics", "/v1/cluster", "/v1/consumer-groups", "/v1/inspect")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class KafkaAdminService(Service):
    """The admin API over ``store``. ``kafka_address()`` gives the Kafka door's advertised
    ``host:port`` (``None`` without a door); ``cluster_id`` and ``node_id`` are the ones the
    door's Metadata answers with."""

    name = "kafka-admin"

    def __init__(
        self,
        store: Store,
        *,
        kafka_address: Callable[[], str | None],
        cluster_id: str = "millstream",
        node_id: int = 0,
    ) -> None:
        self.queries = Queries(store, node_id=node_id)
        self.kafka_address = kafka_address
        self.cluster_id = cluster_id
        self.node_id = node_id

    def routes(self) -> Sequence[Route]:
        return [Route(prefix, self.asgi) for prefix in _PREFIXES]

    async def start(self) -> None:
        """Nothing runs in the background: every answer is read from the store."""

    async def aclose(self) -> None:
        """Nothing to stop."""

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method", "GET")).upper()
        try:
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "method_not_allowed", f"{method} is not allowed here")
            segments = _segments(scope)
            query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
            status, body = 200, await self._answer(segments, query)
        except ApiError as exc:
            status, body = exc.status, _error(exc.code, exc.message)
        except TopicNotFound as exc:
            status, body = 404, _error("topic_not_found", exc.message)
        except InvalidTopic as exc:
            status, body = 400, _error("invalid_topic", exc.message)
        except LogError as exc:
            logger.warning("admin API: the store failed: %s", exc)
            status, body = 503, _error("unavailable", exc.message)
        await _respond(send, status, body, head=method == "HEAD")

    async def _answer(self, parts: list[str], query: dict[str, list[str]]) -> Any:
        queries = self.queries
        match parts:
            case ["v1", "topics"]:
                return [topic.to_json() for topic in await queries.list_topics()]
            case ["v1", "topics", name]:
                return (await queries.describe_topic(name)).to_json()
            case ["v1", "cluster"]:
                return self._cluster().to_json()
            case ["v1", "consumer-groups", group, "lag", *topic] if len(topic) <= 1:
                try:
                    lag = await queries.group_lag(group, topic[0] if topic else None)
                except GroupNotFound as exc:
                    raise ApiError(404, "group_not_found", str(exc)) from exc
                return lag.to_json()
            case ["v1", "inspect", topic]:
                partition = _int(query, "partition", 0, low=0)
                offset = _int(query, "offset", None, low=0)
                limit = _int(query, "limit", 20, low=1, high=MAX_LIMIT)
                try:
                    found = await queries.inspect(topic, partition, offset, limit)
                except PartitionNotFound as exc:
                    raise ApiError(404, "partition_not_found", str(exc)) from exc
                return [message.to_json() for message in found]
            case ["v1", "inspect", topic, "latest"]:
                count = _int(query, "count", 10, low=1, high=MAX_LIMIT)
                return [message.to_json() for message in await queries.latest(topic, count)]
        raise ApiError(404, "not_found", "no such admin route")

    def _cluster(self) -> ClusterInfo:
        brokers = []
        address = self.kafka_address()
        if address is not None:
            host, _, port = address.rpartition(":")
            brokers.append(BrokerInfo(self.node_id, host.strip("[]"), int(port), None))
        return ClusterInfo(self.cluster_id, self.node_id, brokers, self.node_id)


def _segments(scope: Scope) -> list[str]:
    """The path below the app's root, split on ``/`` before percent-decoding each segment."""
    raw = scope.get("raw_path")
    root = str(scope.get("root_path", ""))
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"])
    path = path.split("?", 1)[0]
    if root and path.startswith(root):
        path = path[len(root) :]
    try:
        return [unquote(part, errors="strict") for part in path.strip("/").split("/")]
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_path", "the path is not UTF-8 once decoded") from exc


def _int(
    query: dict[str, list[str]],
    name: str,
    default: int | None,
    *,
    low: int,
    high: int | None = None,
) -> Any:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    text = values[-1]
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number, got {text!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, "invalid_parameter", f"{name} must be {bound}, got {value}")
    return value


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _respond(send: Send, status: int, body: Any, *, head: bool) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})
