"""Authorization of Kafka requests against the connection's principal (``auth.Permissions``).

``authorized(HANDLERS)`` wraps each handler: the parts of a request the principal may not touch
are answered with Kafka's error codes and never reach the handler; the rest is handled as
usual and the answers are merged back in request order. A connection acting as ``admin:``
without quotas keeps the plain handlers (``Broker.handlers_for``), so open nodes and full
admins pay nothing.

- ``write`` on the topic: Produce, CreateTopics, auto-creation by Metadata;
- ``read``: Fetch, ListOffsets, the topics of OffsetCommit and OffsetFetch;
- any of read/write/admin: Metadata, DescribeConfigs of a topic (a request for every topic
  lists only these);
- ``admin``: DeleteTopics, DeleteRecords, CreatePartitions;
  (each refused with TOPIC_AUTHORIZATION_FAILED)
- ``group`` on the group id: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
  OffsetCommit, OffsetFetch, DescribeGroups (GROUP_AUTHORIZATION_FAILED; ListGroups lists only
  these);
- some ``write`` scope: InitProducerId; ``admin:``: DescribeConfigs of the broker
  (CLUSTER_AUTHORIZATION_FAILED).

Every request with a refused part is counted (``millstream_auth_failures_total{door="kafka",
reason="forbidden"}``) and logged with the entries refused, as the HTTP door does; filtering a
listing (Metadata of every topic, ListGroups) is not a refusal.

Quotas (``AuthLimits.produce_byte_rate``/``fetch_byte_rate``): Produce and Fetch answers carry
``throttle_time_ms`` when the token is over its byte rate, and the connection stops reading for
that long (KIP-219), which well-behaved clients wait out anyway.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from millstream.auth import AuthError, Permissions, Principal

from . import codec
from .codec import ErrorCode

if TYPE_CHECKING:
    from ._broker import Broker
    from ._connection import KafkaConnection

__all__ = ["Handler", "authorized", "needs_checks"]

Handler = Callable[["Broker", codec.RequestHeader, Any, "KafkaConnection"], Awaitable[Any]]
_TOPIC = ErrorCode.TOPIC_AUTHORIZATION_FAILED
_GROUP = ErrorCode.GROUP_AUTHORIZATION_FAILED
_CLUSTER = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
_BROKER_RESOURCE = 4
logger = logging.getLogger("millstream.server.kafka")


def _principal(connection: KafkaConnection) -> Principal:
    principal = connection.principal
    assert principal is not None  # the broker only uses these handlers once authenticated
    return principal


def _entry_name(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    for attribute in ("name", "topic", "resource_name", "key", "group_id"):
        value = getattr(entry, attribute, None)
        if value is not None:
            return str(value)
    return "?"


def _refused(broker: Broker, connection: KafkaConnection, body: Any, names: Iterable[str]) -> None:
    """Count and log a request of which ``names`` (topics, groups, the cluster) were refused."""
    principal = _principal(connection)
    api = type(body).__name__.removesuffix("Request")
    listed = ", ".join(repr(name) for name in names)
    error = AuthError(f"token {principal.name!r} is not authorized for {api} on {listed}")
    error.reason = "forbidden"
    if broker.auth is not None:
        broker.auth.refused("kafka", error, connection.host)
    logger.warning(
        "refused %s from %s: %s (%s)",
        api,
        connection.peer,
        error.message,
        error.reason,
        extra={
            "client": connection.peer,
            "principal": str(principal),
            "reason": error.reason,
            "door": "kafka",
        },
    )


async def _split(
    inner: Handler,
    broker: Broker,
    header: codec.RequestHeader,
    body: Any,
    connection: KafkaConnection,
    *,
    field: str,
    answers: str,
    allowed: Callable[[Any], bool],
    deny: Callable[[Any], Any],
) -> Any:
    """Handle the entries of ``body.<field>`` that are ``allowed``; ``deny`` answers the rest;
    the answers (``response.<answers>``, one per entry, in order) are merged in request order."""
    entries: Sequence[Any] = getattr(body, field)
    verdicts = [allowed(entry) for entry in entries]
    if all(verdicts):
        return await inner(broker, header, body, connection)
    denied = (entry for entry, ok in zip(entries, verdicts, strict=True) if not ok)
    _refused(broker, connection, body, map(_entry_name, denied))
    kept = [entry for entry, ok in zip(entries, verdicts, strict=True) if ok]
    response = await inner(broker, header, dataclasses.replace(body, **{field: kept}), connection)
    answered = iter(getattr(response, answers))
    merged = [
        next(answered) if ok else deny(entry) for entry, ok in zip(entries, verdicts, strict=True)
    ]
    return dataclasses.replace(response, **{answers: merged})


def _entries(
    field: str,
    answers: str,
    may: Callable[[Permissions], Callable[[str], bool]],
    deny: Callable[[Any], Any],
    name: Callable[[Any], str] = lambda entry: str(entry.name),
) -> Callable[[Handler], Handler]:
    """The wrapper of a request whose ``field`` entries are each allowed by ``may`` on their
    ``name`` and answered one per entry in ``answers`` (``deny`` builds a refusal)."""

    def wrap(inner: Handler) -> Handler:
        async def handler(
            broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
        ) -> Any:
            can = may(_principal(connection).permissions)
            return await _split(
                inner, broker, header, body, connection,
                field=field, answers=answers, allowed=lambda e: can(name(e)), deny=deny,
            )  # fmt: skip

        return handler

    return wrap


def _refused_partitions(cls: type, partitions: Sequence[Any], **fields: Any) -> list[Any]:
    return [cls(partition_index=p.partition_index, error_code=_TOPIC, **fields) for p in partitions]


def _quota(
    broker: Broker, response: Any, connection: KafkaConnection, produced: int, fetched: int
) -> Any:
    auth = broker.auth
    if auth is None or not auth.has_quotas:
        return response
    wait = auth.charge_bytes(_principal(connection), produced, fetched)
    if wait <= 0:
        return response
    connection.mute(wait)
    return dataclasses.replace(response, throttle_time_ms=int(wait * 1000))


# -- topics ---------------------------------------------------------------------------------


def _produce(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: codec.ProduceRequest, connection: Any
    ) -> Any:
        can = _principal(connection).permissions.can_write
        response = await _split(
            inner, broker, header, body, connection,
            field="topic_data", answers="responses",
            allowed=lambda t: can(t.name),
            deny=lambda t: codec.TopicProduceResponse(
                name=t.name,
                partition_responses=[
                    codec.PartitionProduceResponse(index=p.index, error_code=_TOPIC)
                    for p in t.partition_data
                ],
            ),
        )  # fmt: skip
        produced = sum(
            len(p.records or b"") for t in body.topic_data if can(t.name) for p in t.partition_data
        )
        return _quota(broker, response, connection, produced, 0)

    return handler


def _fetched_bytes(response: codec.FetchResponse) -> int:
    total = 0
    for topic in response.responses:
        for part in topic.partitions:
            records = part.records
            if isinstance(records, list | tuple):
                total += sum(len(chunk) for chunk in records)
            elif records is not None:
                total += len(records)
    return total


def _fetch(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: codec.FetchRequest, connection: Any
    ) -> Any:
        can = _principal(connection).permissions.can_read
        response = await _split(
            inner, broker, header, body, connection,
            field="topics", answers="responses",
            allowed=lambda t: can(t.topic),
            deny=lambda t: codec.FetchableTopicResponse(
                topic=t.topic,
                partitions=[
                    codec.PartitionData(partition_index=p.partition, error_code=_TOPIC)
                    for p in t.partitions
                ],
            ),
        )  # fmt: skip
        return _quota(broker, response, connection, 0, _fetched_bytes(response))

    return handler


def _metadata(inner: Handler) -> Handler:
    """Named topics the principal cannot describe are refused; a request for every topic only
    lists describable ones. Auto-creation needs ``write``: a describable topic the principal
    may not write is looked up without it."""

    async def handler(
        broker: Broker, header: codec.RequestHeader, body: codec.MetadataRequest, connection: Any
    ) -> Any:
        permissions = _principal(connection).permissions
        if body.topics is None or (header.api_version == 0 and not body.topics):
            response = await inner(broker, header, body, connection)
            topics = [t for t in response.topics if permissions.can_describe(t.name or "")]
            return dataclasses.replace(response, topics=topics)

        def allowed(topic: codec.MetadataRequestTopic) -> bool:
            return topic.name is None or permissions.can_describe(topic.name)

        named = body.topics
        creatable = body.allow_auto_topic_creation and all(
            t.name is None or permissions.can_write(t.name) for t in named if allowed(t)
        )
        if body.allow_auto_topic_creation and not creatable:
            body = dataclasses.replace(body, allow_auto_topic_creation=False)
        if header.api_version == 0 and not any(allowed(t) for t in named):
            # v0 reads an empty list as "every topic": answer the refusals alone.
            _refused(broker, connection, body, (str(t.name) for t in named))
            response = await inner(
                broker, header, dataclasses.replace(body, topics=None), connection
            )
            return dataclasses.replace(
                response,
                topics=[codec.MetadataResponseTopic(error_code=_TOPIC, name=t.name) for t in named],
            )
        return await _split(
            inner, broker, header, body, connection,
            field="topics", answers="topics",
            allowed=allowed,
            deny=lambda t: codec.MetadataResponseTopic(error_code=_TOPIC, name=t.name),
        )  # fmt: skip

    return handler


def _delete_topics(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
    ) -> Any:
        can = _principal(connection).permissions.can_admin
        if header.api_version >= 6:
            return await _split(
                inner, broker, header, body, connection,
                field="topics", answers="responses",
                allowed=lambda t: t.name is None or can(t.name),
                deny=lambda t: codec.DeletableTopicResult(
                    name=t.name, topic_id=t.topic_id, error_code=_TOPIC,
                    error_message="not authorized to delete it",
                ),
            )  # fmt: skip
        return await _split(
            inner, broker, header, body, connection,
            field="topic_names", answers="responses",
            allowed=can,
            deny=lambda name: codec.DeletableTopicResult(name=name, error_code=_TOPIC),
        )  # fmt: skip

    return handler


def _describe_configs(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
    ) -> Any:
        permissions = _principal(connection).permissions

        def allowed(resource: codec.DescribeConfigsResource) -> bool:
            if resource.resource_type == _BROKER_RESOURCE:
                return permissions.everything
            return permissions.can_describe(resource.resource_name)

        def deny(resource: codec.DescribeConfigsResource) -> codec.DescribeConfigsResult:
            broker_level = resource.resource_type == _BROKER_RESOURCE
            return codec.DescribeConfigsResult(
                error_code=_CLUSTER if broker_level else _TOPIC,
                error_message="not authorized to describe it",
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )

        return await _split(
            inner, broker, header, body, connection,
            field="resources", answers="results", allowed=allowed, deny=deny,
        )  # fmt: skip

    return handler


def _init_producer_id(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
    ) -> Any:
        if not _principal(connection).permissions.write:
            _refused(broker, connection, body, ["the cluster (no write: scope)"])
            return codec.InitProducerIdResponse(error_code=_CLUSTER)
        return await inner(broker, header, body, connection)

    return handler


# -- groups ---------------------------------------------------------------------------------


def _find_coordinator(inner: Handler) -> Handler:
    async def handler(
        broker: Broker,
        header: codec.RequestHeader,
        body: codec.FindCoordinatorRequest,
        connection: Any,
    ) -> Any:
        can = _principal(connection).permissions.can_group
        if header.api_version >= 4:
            return await _split(
                inner, broker, header, body, connection,
                field="coordinator_keys", answers="coordinators",
                allowed=can,
                deny=lambda key: codec.Coordinator(
                    key=key, node_id=-1, host="", port=-1, error_code=_GROUP,
                    error_message="not authorized for this group",
                ),
            )  # fmt: skip
        if not can(body.key):
            _refused(broker, connection, body, [body.key])
            return codec.FindCoordinatorResponse(
                error_code=_GROUP,
                error_message="not authorized for this group",
                node_id=-1,
                port=-1,
            )
        return await inner(broker, header, body, connection)

    return handler


def _group_only(inner: Handler, refused: Callable[[Any], Any]) -> Handler:
    """JoinGroup, SyncGroup, Heartbeat, LeaveGroup: all or nothing on ``body.group_id``."""

    async def handler(
        broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
    ) -> Any:
        if not _principal(connection).permissions.can_group(body.group_id):
            _refused(broker, connection, body, [body.group_id])
            return refused(body)
        return await inner(broker, header, body, connection)

    return handler


def _leave_refused(body: codec.LeaveGroupRequest) -> codec.LeaveGroupResponse:
    members = [
        codec.MemberResponse(
            member_id=m.member_id, group_instance_id=m.group_instance_id, error_code=_GROUP
        )
        for m in body.members
    ]
    return codec.LeaveGroupResponse(error_code=_GROUP, members=members)


def _offset_commit(inner: Handler) -> Handler:
    async def handler(
        broker: Broker,
        header: codec.RequestHeader,
        body: codec.OffsetCommitRequest,
        connection: Any,
    ) -> Any:
        permissions = _principal(connection).permissions

        def refused(topic: codec.OffsetCommitRequestTopic, code: ErrorCode) -> Any:
            return codec.OffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    codec.OffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                    for p in topic.partitions
                ],
            )

        if not permissions.can_group(body.group_id):
            _refused(broker, connection, body, [body.group_id])
            return codec.OffsetCommitResponse(topics=[refused(t, _GROUP) for t in body.topics])
        return await _split(
            inner, broker, header, body, connection,
            field="topics", answers="topics",
            allowed=lambda t: permissions.can_read(t.name),
            deny=lambda t: refused(t, _TOPIC),
        )  # fmt: skip

    return handler


def _fetch_rows(rows: Sequence[Any], cls: type, code: ErrorCode) -> list[Any]:
    return [cls(partition_index=p, committed_offset=-1, error_code=code) for p in rows]


def _offset_fetch(inner: Handler) -> Handler:
    """One group before v8, a list from v8; unreadable topics are refused by name, and left
    out of an answer for every committed topic."""

    async def handler(
        broker: Broker, header: codec.RequestHeader, body: codec.OffsetFetchRequest, connection: Any
    ) -> Any:
        permissions = _principal(connection).permissions
        if header.api_version < 8:
            if not permissions.can_group(body.group_id):
                _refused(broker, connection, body, [body.group_id])
                topics = [
                    codec.OffsetFetchResponseTopic(
                        name=t.name,
                        partitions=_fetch_rows(
                            t.partition_indexes, codec.OffsetFetchResponsePartition, _GROUP
                        ),
                    )
                    for t in body.topics or ()
                ]
                return codec.OffsetFetchResponse(topics=topics, error_code=_GROUP)
            if body.topics is None:
                response = await inner(broker, header, body, connection)
                kept = [t for t in response.topics if permissions.can_read(t.name)]
                return dataclasses.replace(response, topics=kept)
            return await _split(
                inner, broker, header, body, connection,
                field="topics", answers="topics",
                allowed=lambda t: permissions.can_read(t.name),
                deny=lambda t: codec.OffsetFetchResponseTopic(
                    name=t.name,
                    partitions=_fetch_rows(
                        t.partition_indexes, codec.OffsetFetchResponsePartition, _TOPIC
                    ),
                ),
            )  # fmt: skip
        groups = []
        denied: list[str] = []
        for request in body.groups:
            if not permissions.can_group(request.group_id):
                denied.append(request.group_id)
                groups.append(
                    codec.OffsetFetchResponseGroup(group_id=request.group_id, error_code=_GROUP)
                )
                continue
            one = dataclasses.replace(body, groups=[request])
            answer = (await inner(broker, header, one, connection)).groups[0]
            wanted = {t.name for t in request.topics} if request.topics is not None else None
            visible: list[Any] = []
            for topic in answer.topics:
                if permissions.can_read(topic.name):
                    visible.append(topic)
                elif wanted is not None:
                    denied.append(topic.name)
                    rows = [p.partition_index for p in topic.partitions]
                    visible.append(
                        codec.OffsetFetchResponseTopics(
                            name=topic.name,
                            partitions=_fetch_rows(
                                rows, codec.OffsetFetchResponsePartitions, _TOPIC
                            ),
                        )
                    )
            groups.append(dataclasses.replace(answer, topics=visible))
        if denied:
            _refused(broker, connection, body, denied)
        return codec.OffsetFetchResponse(groups=groups)

    return handler


def _list_groups(inner: Handler) -> Handler:
    async def handler(
        broker: Broker, header: codec.RequestHeader, body: Any, connection: Any
    ) -> Any:
        can = _principal(connection).permissions.can_group
        response = await inner(broker, header, body, connection)
        return dataclasses.replace(response, groups=[g for g in response.groups if can(g.group_id)])

    return handler


_WRAPPERS: dict[type, Callable[[Handler], Handler]] = {
    codec.ProduceRequest: _produce,
    codec.FetchRequest: _fetch,
    codec.ListOffsetsRequest: _entries(
        "topics",
        "topics",
        lambda p: p.can_read,
        lambda t: codec.ListOffsetsTopicResponse(
            name=t.name,
            partitions=_refused_partitions(codec.ListOffsetsPartitionResponse, t.partitions),
        ),
    ),
    codec.DeleteRecordsRequest: _entries(
        "topics",
        "topics",
        lambda p: p.can_admin,
        lambda t: codec.DeleteRecordsTopicResult(
            name=t.name,
            partitions=_refused_partitions(
                codec.DeleteRecordsPartitionResult, t.partitions, low_watermark=-1
            ),
        ),
    ),
    codec.MetadataRequest: _metadata,
    codec.CreateTopicsRequest: _entries(
        "topics",
        "topics",
        lambda p: p.can_write,
        lambda t: codec.CreatableTopicResult(
            name=t.name,
            error_code=_TOPIC,
            error_message="not authorized to create it",
            configs=None,
        ),
    ),
    codec.DeleteTopicsRequest: _delete_topics,
    codec.CreatePartitionsRequest: _entries(
        "topics",
        "results",
        lambda p: p.can_admin,
        lambda t: codec.CreatePartitionsTopicResult(
            name=t.name, error_code=_TOPIC, error_message="not authorized to alter it"
        ),
    ),
    codec.DescribeConfigsRequest: _describe_configs,
    codec.InitProducerIdRequest: _init_producer_id,
    codec.FindCoordinatorRequest: _find_coordinator,
    codec.JoinGroupRequest: lambda inner: _group_only(
        inner, lambda b: codec.JoinGroupResponse(error_code=_GROUP, member_id=b.member_id)
    ),
    codec.SyncGroupRequest: lambda inner: _group_only(
        inner, lambda b: codec.SyncGroupResponse(error_code=_GROUP)
    ),
    codec.HeartbeatRequest: lambda inner: _group_only(
        inner, lambda b: codec.HeartbeatResponse(error_code=_GROUP)
    ),
    codec.LeaveGroupRequest: lambda inner: _group_only(inner, _leave_refused),
    codec.OffsetCommitRequest: _offset_commit,
    codec.OffsetFetchRequest: _offset_fetch,
    codec.ListGroupsRequest: _list_groups,
    codec.DescribeGroupsRequest: _entries(
        "groups",
        "groups",
        lambda p: p.can_group,
        lambda group_id: codec.DescribedGroup(
            group_id=group_id,
            error_code=_GROUP,
            error_message="not authorized to describe this group",
        ),
        name=str,
    ),
}


def authorized(handlers: dict[type, Handler]) -> dict[type, Handler]:
    """``handlers`` with every request type that touches topics, groups or the cluster wrapped
    (see the module docstring); ApiVersions and the SASL requests pass unchanged."""
    table: dict[type, Handler] = {}
    for kind, handler in handlers.items():
        wrap = _WRAPPERS.get(kind)
        table[kind] = handler if wrap is None else wrap(handler)
    return table


def needs_checks(principal: Principal, quotas: bool) -> bool:
    """Whether a connection acting as ``principal`` needs the authorized handlers."""
    permissions: Permissions = principal.permissions
    return quotas or not permissions.everything
