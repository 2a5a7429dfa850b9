"""The broker: a request frame in, a ``Job`` out; the state every handler shares.

``dispatch`` decodes the frame (``codec.decode_request`` routes on api key and version before
the body) and picks the handler by the body's type. What cannot be decoded closes the
connection, as a Kafka broker does, except an ApiVersions request newer than we speak, which
is answered UNSUPPORTED_VERSION with a v0 body listing our versions so the client retries
lower (KIP-511). Produce requests may overlap each other on a connection (``Job.overlap``);
acks=0 produces are answered with nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from millstream.auth import Authenticator, InvalidToken, Principal
from millstream.log import LogError, Membership, Store, TopicExists, TopicInfo, Topics

from . import codec
from ._admin import create_partitions, create_topics, delete_topics, describe_configs
from ._authz import Handler, authorized, needs_checks
from ._brokers import Brokers
from ._cluster import metadata
from ._connection import Job, KafkaConnection
from ._coordinator import GroupCoordinator
from ._errors import error_code
from ._fetch import delete_records, fetch, list_offsets
from ._group_store import GroupStore
from ._groups import (
    describe_groups,
    find_coordinator,
    heartbeat,
    join_group,
    leave_group,
    list_groups,
    offset_commit,
    offset_fetch,
    sync_group,
)
from ._produce import init_producer_id, produce
from ._sasl import sasl_authenticate, sasl_handshake
from ._settings import KafkaSettings
from ._stats import KafkaStats
from ._topic_cache import TopicCache

__all__ = ["Broker"]

logger = logging.getLogger("millstream.server.kafka")


def _plain(handler: Callable[[Broker, Any], Awaitable[Any]]) -> Handler:
    return lambda broker, header, body, connection: handler(broker, body)


def _headed(handler: Callable[[Broker, codec.RequestHeader, Any], Awaitable[Any]]) -> Handler:
    return lambda broker, header, body, connection: handler(broker, header, body)


async def _api_versions(
    broker: Broker, header: codec.RequestHeader, body: Any, connection: KafkaConnection
) -> codec.ApiVersionsResponse:
    return codec.api_versions_response()


HANDLERS: dict[type, Handler] = {
    codec.ApiVersionsRequest: _api_versions,
    codec.MetadataRequest: _headed(metadata),
    codec.ProduceRequest: produce,
    codec.FetchRequest: _plain(fetch),
    codec.ListOffsetsRequest: _plain(list_offsets),
    codec.InitProducerIdRequest: _plain(init_producer_id),
    codec.DeleteRecordsRequest: _plain(delete_records),
    codec.CreateTopicsRequest: _headed(create_topics),
    codec.DeleteTopicsRequest: _headed(delete_topics),
    codec.CreatePartitionsRequest: _headed(create_partitions),
    codec.DescribeConfigsRequest: _headed(describe_configs),
    codec.FindCoordinatorRequest: _headed(find_coordinator),
    codec.JoinGroupRequest: join_group,
    codec.SyncGroupRequest: _headed(sync_group),
    codec.HeartbeatRequest: _headed(heartbeat),
    codec.LeaveGroupRequest: _headed(leave_group),
    codec.OffsetCommitRequest: _headed(offset_commit),
    codec.OffsetFetchRequest: _headed(offset_fetch),
    codec.ListGroupsRequest: _headed(list_groups),
    codec.DescribeGroupsRequest: _headed(describe_groups),
    codec.SaslHandshakeRequest: sasl_handshake,
    codec.SaslAuthenticateRequest: sasl_authenticate,
}
AUTHORIZED_HANDLERS = authorized(HANDLERS)
_API_NAMES = {kind: kind.__name__.removesuffix("Request") for kind in HANDLERS}
#: What a connection may send before it authenticates on a node that requires it.
_BEFORE_LOGIN = (
    codec.ApiVersionsRequest,
    codec.SaslHandshakeRequest,
    codec.SaslAuthenticateRequest,
)


class Broker:
    """One node's Kafka broker over ``store``. Alone, it is node 0, leader of every partition
    and the coordinator of every group; with ``members`` (a cluster), ``brokers`` says which
    node leads what. ``brokers.port`` is set by the door once it listens. With ``auth``,
    clients may log in over SASL (``_sasl``) and are then authorized request by request
    (``_authz``); with ``auth.required`` they must log in first."""

    def __init__(
        self,
        store: Store,
        settings: KafkaSettings,
        auth: Authenticator | None = None,
        members: Membership | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.brokers = Brokers(settings.advertised_host or settings.host, settings.port, members)
        self.auth = auth
        self._login_required = auth is not None and auth.required
        self.stats = KafkaStats()
        #: an OpenTelemetry tracer: one span per request (``serve --otel``)
        self.tracer: Any = None
        self.topics = Topics(store)
        self.topic_cache = TopicCache(self.topics)
        self.group_store = GroupStore(store, on_lost=self.drop_group)
        self.coordinator = GroupCoordinator(
            self.group_store.save, initial_delay=settings.group_initial_delay
        )
        if members is not None:
            members.add_listener(self._view_changed)

    @property
    def node_id(self) -> int:
        return self.brokers.node_id

    async def start(self) -> None:
        """Finish topic operations a crash interrupted."""
        await self.topics.recover()

    def drop_group(self, group_id: str) -> None:
        """Another node coordinates ``group_id`` now (or its record could not be written):
        forget it here; it is reloaded from the database if it comes back."""
        self.coordinator.drop(group_id)
        self.group_store.forget(group_id)

    def _view_changed(self) -> None:
        """The live nodes changed: hand over the groups another node coordinates now, before
        their session timers expire members that went there."""
        for group_id in list(self.coordinator.groups):
            if not self.brokers.coordinates(group_id):
                self.drop_group(group_id)

    async def aclose(self) -> None:
        """Answer parked group requests; wait for group records being written."""
        self.coordinator.close()
        await self.group_store.drain()

    async def auto_create(self, name: str) -> TopicInfo | codec.ErrorCode:
        """Create topic ``name`` with the default partition count (someone else may win)."""
        try:
            return await self.topics.create(name, self.settings.default_partitions)
        except TopicExists:
            try:
                return await self.topics.describe(name)
            except LogError as exc:
                return error_code(exc)
        except LogError as exc:
            return error_code(exc)

    def handlers_for(self, principal: Principal) -> dict[type, Handler]:
        """The handler table of a connection acting as ``principal``."""
        quotas = self.auth is not None and self.auth.has_quotas
        return AUTHORIZED_HANDLERS if needs_checks(principal, quotas) else HANDLERS

    # -- requests ------------------------------------------------------------------------------

    def dispatch(self, frame: bytes, connection: KafkaConnection) -> Job:
        try:
            request = codec.decode_request(frame)
        except codec.UnsupportedVersion as exc:
            if not exc.close_connection and exc.header is not None:
                fallback = codec.api_versions_response(codec.ErrorCode.UNSUPPORTED_VERSION)
                return Job(_ready(codec.encode_response(exc.header, fallback)))
            logger.info("closing %s: %s", connection.peer, exc)
            return Job(_nothing(), close=True)
        except codec.KafkaCodecError as exc:
            logger.info("closing %s: %s", connection.peer, exc)
            return Job(_nothing(), close=True)
        body = request.body
        handlers = connection.handlers
        if handlers is None:
            if self._login_required and not isinstance(body, _BEFORE_LOGIN):
                return self._refuse_unauthenticated(connection, type(body).__name__)
            handlers = HANDLERS
        handler = handlers[type(body)]
        answer = self._answer(handler, request, connection)
        return Job(answer, overlap=type(body) is codec.ProduceRequest)

    def _refuse_unauthenticated(self, connection: KafkaConnection, what: str) -> Job:
        """Kafka closes a connection that sends requests before authenticating."""
        assert self.auth is not None
        error = InvalidToken(f"{what} before SASL authentication on a node that requires it")
        error.reason = "unauthenticated"
        self.auth.refused("kafka", error, connection.host)
        logger.warning(
            "closing %s: %s",
            connection.peer,
            error.message,
            extra={"client": connection.peer, "reason": error.reason, "door": "kafka"},
        )
        return Job(_nothing(), close=True)

    async def _answer(
        self, handler: Handler, request: codec.Request, connection: KafkaConnection
    ) -> list[bytes | memoryview] | None:
        api = _API_NAMES[type(request.body)]
        started = time.perf_counter()
        if self.tracer is None:
            response = await handler(self, request.header, request.body, connection)
        else:
            with self.tracer.start_as_current_span(f"kafka {api}") as span:
                span.set_attribute("messaging.system", "kafka")
                span.set_attribute("millstream.kafka.api", api)
                span.set_attribute("client.address", connection.peer)
                if connection.principal is not None:
                    span.set_attribute("millstream.principal", str(connection.principal))
                response = await handler(self, request.header, request.body, connection)
        self.stats.done(api, time.perf_counter() - started)
        if not codec.expects_response(request):
            return None
        return codec.encode_response(request.header, response)


async def _ready(chunks: list[bytes | memoryview]) -> list[bytes | memoryview]:
    return chunks


async def _nothing() -> None:
    return None
