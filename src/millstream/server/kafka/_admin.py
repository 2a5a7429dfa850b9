"""Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37) and
DescribeConfigs (32), translated to ``log.Topics``.

The replication factor may be 1 up to the live brokers (1 on one node; -1 is the default) and
explicit replica assignments may name distinct live brokers; either is accepted and ignored,
since the store replicates the data and ``_brokers`` chooses each partition's leader.
``validate_only`` checks the name, the partition count and that the topic does not exist
(CreateTopics) or can grow (CreatePartitions), and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from millstream.log import (
    DEFAULT_TOPIC_CONFIGS,
    LogError,
    TopicNotFound,
    is_internal,
    is_topic_name,
)

from ._errors import error_code
from .codec import (
    ZERO_UUID,
    CreatableTopic,
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeletableTopicResult,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    ErrorCode,
    RequestHeader,
)

if TYPE_CHECKING:
    from ._broker import Broker

__all__ = ["create_partitions", "create_topics", "delete_topics", "describe_configs"]

TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
# DescribeConfigs config_source values (KIP-226)
SOURCE_TOPIC = 1
SOURCE_DEFAULT = 5
_STRING = 2  # config_type (v3+) of every topic config we report


async def create_topics(
    broker: Broker, header: RequestHeader, body: CreateTopicsRequest
) -> CreateTopicsResponse:
    results = [await _create(broker, topic, body.validate_only) for topic in body.topics]
    return CreateTopicsResponse(topics=results)


_ASSIGNMENT_RULE = "replicas must be distinct live brokers (leaders are chosen by millstream)"


def _assignable(broker: Broker, replicas: Sequence[int]) -> bool:
    """A manual replica assignment names distinct live brokers. The database replicates the
    data; which node leads a partition is decided by ``_brokers``, whatever is asked here."""
    live = {b.node_id for b in broker.brokers.listed()}
    return bool(replicas) and len(set(replicas)) == len(replicas) and set(replicas) <= live


async def _create(
    broker: Broker, topic: CreatableTopic, validate_only: bool
) -> CreatableTopicResult:
    name = topic.name
    partitions = topic.num_partitions
    if topic.assignments:
        if partitions not in (-1, len(topic.assignments)) or any(
            not _assignable(broker, a.broker_ids) for a in topic.assignments
        ):
            return _refused(name, ErrorCode.INVALID_REPLICA_ASSIGNMENT, _ASSIGNMENT_RULE)
        partitions = len(topic.assignments)
    elif partitions == -1:
        partitions = broker.settings.default_partitions
    brokers = len(broker.brokers.listed())
    if not (topic.replication_factor == -1 or 1 <= topic.replication_factor <= brokers) and (
        not topic.assignments
    ):
        return _refused(
            name,
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"the replication factor is 1 to {brokers} (the live brokers)",
        )
    configs = {c.name: c.value for c in topic.configs if c.value is not None}
    try:
        if validate_only:
            if not is_topic_name(name) or is_internal(name):
                return _refused(name, ErrorCode.INVALID_TOPIC_EXCEPTION, "not a legal topic name")
            if partitions < 1:
                return _refused(name, ErrorCode.INVALID_PARTITIONS, "a topic needs partitions")
            try:
                await broker.topics.describe(name)
            except TopicNotFound:
                info_partitions, info_configs = partitions, {**DEFAULT_TOPIC_CONFIGS, **configs}
            else:
                return _refused(name, ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} exists")
        else:
            info = await broker.topics.create(name, partitions, configs)
            broker.topic_cache.forget(name)
            info_partitions, info_configs = info.partitions, info.configs
    except LogError as exc:
        return _refused(name, error_code(exc), exc.message)
    return CreatableTopicResult(
        name=name,
        error_message=None,
        num_partitions=info_partitions,
        replication_factor=1,
        configs=[
            CreatableTopicConfigs(
                name=key,
                value=value,
                config_source=SOURCE_DEFAULT
                if DEFAULT_TOPIC_CONFIGS.get(key) == value
                else SOURCE_TOPIC,
            )
            for key, value in sorted(info_configs.items())
        ],
    )


def _refused(name: str, code: ErrorCode, message: str) -> CreatableTopicResult:
    return CreatableTopicResult(name=name, error_code=code, error_message=message, configs=None)


async def delete_topics(
    broker: Broker, header: RequestHeader, body: DeleteTopicsRequest
) -> DeleteTopicsResponse:
    wanted: list[tuple[str | None, UUID]]
    if header.api_version >= 6:
        wanted = [(state.name, state.topic_id) for state in body.topics]
    else:
        wanted = [(name, ZERO_UUID) for name in body.topic_names]
    results: list[DeletableTopicResult] = []
    for name, topic_id in wanted:
        if name is None:
            results.append(
                DeletableTopicResult(
                    name=None,
                    topic_id=topic_id,
                    error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                    error_message="millstream topics have no ids; delete by name",
                )
            )
            continue
        code, message = ErrorCode.NONE, None
        if not is_topic_name(name) or is_internal(name):
            code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "not a topic"
        else:
            try:
                await broker.topics.delete(name)
            except LogError as exc:
                code, message = error_code(exc), exc.message
            broker.topic_cache.forget(name)
        results.append(DeletableTopicResult(name=name, error_code=code, error_message=message))
    return DeleteTopicsResponse(responses=results)


async def create_partitions(
    broker: Broker, header: RequestHeader, body: CreatePartitionsRequest
) -> CreatePartitionsResponse:
    results: list[CreatePartitionsTopicResult] = []
    for topic in body.topics:
        code, message = ErrorCode.NONE, None
        try:
            if topic.assignments and any(
                not _assignable(broker, a.broker_ids) for a in topic.assignments
            ):
                code, message = ErrorCode.INVALID_REPLICA_ASSIGNMENT, _ASSIGNMENT_RULE
            elif body.validate_only:
                info = await broker.topics.describe(topic.name)
                if topic.count <= info.partitions:
                    code = ErrorCode.INVALID_PARTITIONS
                    message = f"topic {topic.name!r} has {info.partitions} partitions; ask for more"
            else:
                await broker.topics.add_partitions(topic.name, topic.count)
                broker.topic_cache.forget(topic.name)
        except LogError as exc:
            code, message = error_code(exc), exc.message
        results.append(
            CreatePartitionsTopicResult(name=topic.name, error_code=code, error_message=message)
        )
    return CreatePartitionsResponse(results=results)


async def describe_configs(
    broker: Broker, header: RequestHeader, body: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    results: list[DescribeConfigsResult] = []
    for resource in body.resources:
        kind, name = resource.resource_type, resource.resource_name
        if kind == BROKER_RESOURCE:
            # One node without broker-level settings to report; an empty list is a valid answer.
            results.append(
                DescribeConfigsResult(resource_type=kind, resource_name=name, configs=[])
            )
            continue
        if kind != TOPIC_RESOURCE:
            results.append(
                DescribeConfigsResult(
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message=f"resource type {kind} is not supported (topics and brokers are)",
                    resource_type=kind,
                    resource_name=name,
                )
            )
            continue
        try:
            configs = await broker.topics.describe_configs(name)
        except LogError as exc:
            results.append(
                DescribeConfigsResult(
                    error_code=error_code(exc),
                    error_message=exc.message,
                    resource_type=kind,
                    resource_name=name,
                )
            )
            continue
        keys = resource.configuration_keys
        results.append(
            DescribeConfigsResult(
                error_message=None,
                resource_type=kind,
                resource_name=name,
                configs=[
                    DescribeConfigsResourceResult(
                        name=key,
                        value=value,
                        config_source=SOURCE_DEFAULT
                        if DEFAULT_TOPIC_CONFIGS.get(key) == value
                        else SOURCE_TOPIC,
                        config_type=_STRING,
                        documentation=None,
                    )
                    for key, value in sorted(configs.items())
                    if keys is None or key in keys
                ],
            )
        )
    return DescribeConfigsResponse(results=results)
