"""Metadata (3): how clients find us (ApiVersions is the codec's; SASL is ``_sasl``).

Alone, one broker (node id 0, the advertised host and the bound port) leads every partition;
in a cluster every live node is listed and each partition names its leader (``_brokers``). Metadata
creates missing topics when asked to and allowed (``auto_create_topics``); topics come from
``log.Topics``, so a plain stream with a legal topic name is a 1-partition topic and internal
streams never show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from millstream.log import TopicInfo, TopicNotFound, is_internal, is_topic_name

from .codec import (
    ErrorCode,
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
    RequestHeader,
)

if TYPE_CHECKING:
    from ._broker import Broker

__all__ = ["metadata"]

CLUSTER_ID = "millstream"


async def metadata(
    broker: Broker, header: RequestHeader, body: MetadataRequest
) -> MetadataResponse:
    everything = body.topics is None or (header.api_version == 0 and not body.topics)
    topics: list[MetadataResponseTopic] = []
    if everything:
        topics = [_topic(broker, info) for info in await broker.topics.list()]
    else:
        for requested in body.topics or ():
            name = requested.name
            if name is None:  # by topic id only: millstream has no topic ids
                topics.append(
                    MetadataResponseTopic(
                        error_code=ErrorCode.UNKNOWN_TOPIC_ID,
                        name=None,
                        topic_id=requested.topic_id,
                    )
                )
                continue
            topics.append(await _named(broker, name, body.allow_auto_topic_creation))
    return MetadataResponse(
        brokers=[
            MetadataResponseBroker(node_id=b.node_id, host=b.host, port=b.port)
            for b in broker.brokers.listed()
        ],
        cluster_id=CLUSTER_ID,
        controller_id=broker.brokers.controller(),
        topics=topics,
    )


async def _named(broker: Broker, name: str, allow_auto_create: bool) -> MetadataResponseTopic:
    if not is_topic_name(name) or is_internal(name):
        return MetadataResponseTopic(error_code=ErrorCode.INVALID_TOPIC_EXCEPTION, name=name)
    try:
        info = await broker.topics.describe(name)
    except TopicNotFound:
        if not (allow_auto_create and broker.settings.auto_create_topics):
            return MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name)
        created = await broker.auto_create(name)
        if not isinstance(created, TopicInfo):
            return MetadataResponseTopic(error_code=created, name=name)
        info = created
    return _topic(broker, info)


def _topic(broker: Broker, info: TopicInfo) -> MetadataResponseTopic:
    leaders = [broker.brokers.leader(info.name, k).node_id for k in range(info.partitions)]
    return MetadataResponseTopic(
        name=info.name,
        partitions=[
            MetadataResponsePartition(
                partition_index=k,
                leader_id=node,
                leader_epoch=0,
                replica_nodes=[node],
                isr_nodes=[node],
            )
            for k, node in enumerate(leaders)
        ],
    )
