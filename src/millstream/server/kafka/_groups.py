"""Consumer group requests: FindCoordinator (10), JoinGroup (11), SyncGroup (14), Heartbeat
(12), LeaveGroup (13), OffsetCommit (8), OffsetFetch (9), ListGroups (16), DescribeGroups (15).

Translation only: membership lives in ``_coordinator``, durable state in ``_group_store``.
Alone, this node coordinates every group. In a cluster each group has one coordinator
(``Brokers.coordinator``); the others answer its requests NOT_COORDINATOR, except OffsetFetch,
which any node answers from the database. A node that becomes a group's coordinator loads
it from its record (``GroupCoordinator.group``), so members of a Stable group go on
heartbeating at the same generation when their coordinator died.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from millstream.log import is_topic_name

from ._coordinator import EMPTY, Group
from .codec import (
    Coordinator,
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    ErrorCode,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    JoinGroupResponseMember,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListedGroup,
    ListGroupsRequest,
    ListGroupsResponse,
    MemberResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
    OffsetFetchRequest,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
    RequestHeader,
    SyncGroupRequest,
    SyncGroupResponse,
)

if TYPE_CHECKING:
    from ._broker import Broker
    from ._connection import KafkaConnection

__all__ = [
    "describe_groups",
    "find_coordinator",
    "heartbeat",
    "join_group",
    "leave_group",
    "list_groups",
    "offset_commit",
    "offset_fetch",
    "sync_group",
]

GROUP_KEY = 0
MAX_METADATA_BYTES = 4096  # Kafka's offset.metadata.max.bytes
_DEAD = "Dead"


async def _group(broker: Broker, group_id: str) -> Group | None:
    """The group in memory, loaded from its record if new here; ``None`` when another node
    coordinates it (and this node forgets any copy it had)."""
    if not broker.brokers.coordinates(group_id):
        broker.drop_group(group_id)
        return None
    group = broker.coordinator.groups.get(group_id)
    if group is None:
        stored = await broker.group_store.load(group_id)
        group = broker.coordinator.group(group_id, stored)
    return group


async def _saved(broker: Broker, group: Group) -> bool:
    """Wait for the group's record as of now to be written; ``False`` if this node lost the
    group meanwhile (the answer is then NOT_COORDINATOR, and the client goes to the new one)."""
    written = broker.group_store.fence(group.group_id)
    return written is None or await written >= 0


async def find_coordinator(
    broker: Broker, header: RequestHeader, body: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    error = ErrorCode.NONE if body.key_type == GROUP_KEY else ErrorCode.COORDINATOR_NOT_AVAILABLE
    message = None if error == ErrorCode.NONE else "only consumer groups have a coordinator here"
    if header.api_version >= 4:
        coordinators = []
        for key in body.coordinator_keys:
            node = broker.brokers.coordinator(key)
            coordinators.append(
                Coordinator(
                    key=key, node_id=node.node_id, host=node.host, port=node.port,
                    error_code=error, error_message=message,
                )
            )  # fmt: skip
        return FindCoordinatorResponse(coordinators=coordinators)
    node = broker.brokers.coordinator(body.key)
    return FindCoordinatorResponse(
        error_code=error, error_message=message, node_id=node.node_id, host=node.host,
        port=node.port,
    )  # fmt: skip


async def join_group(
    broker: Broker, header: RequestHeader, body: JoinGroupRequest, connection: KafkaConnection
) -> JoinGroupResponse:
    if not body.group_id:
        return JoinGroupResponse(error_code=ErrorCode.INVALID_GROUP_ID, member_id=body.member_id)
    group = await _group(broker, body.group_id)
    if group is None:
        return JoinGroupResponse(error_code=ErrorCode.NOT_COORDINATOR, member_id=body.member_id)
    outcome = await group.join(
        body.member_id,
        group_instance_id=body.group_instance_id,
        client_id=header.client_id or "",
        client_host=connection.peer,
        session_timeout_ms=body.session_timeout_ms,
        rebalance_timeout_ms=body.rebalance_timeout_ms,
        protocol_type=body.protocol_type,
        protocols=[(p.name, p.metadata) for p in body.protocols],
        require_known_id=header.api_version >= 4 and body.group_instance_id is None,
    )
    if outcome.error == ErrorCode.NONE and not await _saved(broker, group):
        return JoinGroupResponse(error_code=ErrorCode.NOT_COORDINATOR, member_id=body.member_id)
    protocol_name = outcome.protocol_name
    if protocol_name is None and header.api_version < 7:
        protocol_name = ""  # nullable from v7 only
    return JoinGroupResponse(
        error_code=outcome.error,
        generation_id=outcome.generation,
        protocol_type=outcome.protocol_type,
        protocol_name=protocol_name,
        leader=outcome.leader,
        member_id=outcome.member_id,
        members=[
            JoinGroupResponseMember(member_id=m, group_instance_id=i, metadata=meta)
            for m, i, meta in outcome.members
        ],
    )


async def sync_group(
    broker: Broker, header: RequestHeader, body: SyncGroupRequest
) -> SyncGroupResponse:
    group = await _group(broker, body.group_id)
    if group is None:
        return SyncGroupResponse(error_code=ErrorCode.NOT_COORDINATOR)
    assignments = {a.member_id: a.assignment for a in body.assignments}
    outcome = await group.sync(body.member_id, body.generation_id, assignments)
    if outcome.error == ErrorCode.NONE and not await _saved(broker, group):
        return SyncGroupResponse(error_code=ErrorCode.NOT_COORDINATOR)
    return SyncGroupResponse(
        error_code=outcome.error,
        protocol_type=outcome.protocol_type,
        protocol_name=outcome.protocol_name,
        assignment=outcome.assignment,
    )


async def heartbeat(
    broker: Broker, header: RequestHeader, body: HeartbeatRequest
) -> HeartbeatResponse:
    group = await _group(broker, body.group_id)
    if group is None:
        return HeartbeatResponse(error_code=ErrorCode.NOT_COORDINATOR)
    return HeartbeatResponse(error_code=group.heartbeat(body.member_id, body.generation_id))


async def leave_group(
    broker: Broker, header: RequestHeader, body: LeaveGroupRequest
) -> LeaveGroupResponse:
    group = await _group(broker, body.group_id)
    if group is None:
        return LeaveGroupResponse(error_code=ErrorCode.NOT_COORDINATOR)
    if header.api_version < 3:
        return LeaveGroupResponse(error_code=group.leave(body.member_id))
    members = [
        MemberResponse(
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            error_code=group.leave(m.member_id),
        )
        for m in body.members
    ]
    return LeaveGroupResponse(members=members)


async def offset_commit(
    broker: Broker, header: RequestHeader, body: OffsetCommitRequest
) -> OffsetCommitResponse:
    group_id = body.group_id
    error: ErrorCode | None
    if not group_id:
        error = ErrorCode.INVALID_GROUP_ID
    else:
        group = await _group(broker, group_id)
        error = (
            ErrorCode.NOT_COORDINATOR
            if group is None
            else group.commit_error(body.member_id, body.generation_id_or_member_epoch)
        )
    fence = broker.group_store.fence(group_id) if body.generation_id_or_member_epoch >= 0 else None
    rows: list[tuple[str, int, int, int, str]] = []
    codes: dict[tuple[str, int], ErrorCode] = {}
    for topic in body.topics:
        for part in topic.partitions:
            where = (topic.name, part.partition_index)
            metadata = part.committed_metadata or ""
            if error is not None:
                codes[where] = error
            elif not is_topic_name(topic.name):
                codes[where] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif len(metadata.encode()) > MAX_METADATA_BYTES:
                codes[where] = ErrorCode.OFFSET_METADATA_TOO_LARGE
            else:
                rows.append((*where, part.committed_offset, part.committed_leader_epoch, metadata))
    if rows and not await broker.group_store.commit(group_id, rows, fence):
        for topic_name, partition, *_ in rows:
            codes[(topic_name, partition)] = ErrorCode.ILLEGAL_GENERATION
    return OffsetCommitResponse(
        topics=[
            OffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    OffsetCommitResponsePartition(
                        partition_index=part.partition_index,
                        error_code=codes.get((topic.name, part.partition_index), ErrorCode.NONE),
                    )
                    for part in topic.partitions
                ],
            )
            for topic in body.topics
        ]
    )


async def offset_fetch(
    broker: Broker, header: RequestHeader, body: OffsetFetchRequest
) -> OffsetFetchResponse:
    """One group before v8; a list of groups from v8 (same fields, other message types)."""
    if header.api_version < 8:
        found = await _fetch_offsets(broker, body.group_id, _wanted(body.topics))
        topics = [
            OffsetFetchResponseTopic(
                name=name, partitions=[OffsetFetchResponsePartition(**row) for row in rows]
            )
            for name, rows in found
        ]
        return OffsetFetchResponse(topics=topics)
    groups: list[OffsetFetchResponseGroup] = []
    for request in body.groups:
        found = await _fetch_offsets(broker, request.group_id, _wanted(request.topics))
        per_topic = [
            OffsetFetchResponseTopics(
                name=name, partitions=[OffsetFetchResponsePartitions(**row) for row in rows]
            )
            for name, rows in found
        ]
        groups.append(OffsetFetchResponseGroup(group_id=request.group_id, topics=per_topic))
    return OffsetFetchResponse(groups=groups)


def _wanted(
    topics: Sequence[OffsetFetchRequestTopic | OffsetFetchRequestTopics] | None,
) -> list[tuple[str, Sequence[int]]] | None:
    return None if topics is None else [(t.name, t.partition_indexes) for t in topics]


async def _fetch_offsets(
    broker: Broker, group_id: str, wanted: Sequence[tuple[str, Sequence[int]]] | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """``(topic, [partition fields])`` as OffsetFetch answers them: -1 where nothing is
    committed; every committed partition when ``wanted`` is ``None``."""
    committed = await broker.group_store.committed(group_id)
    if wanted is None:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(committed):
            by_topic.setdefault(topic, []).append(partition)
        wanted = list(by_topic.items())
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for topic, partitions in wanted:
        rows: list[dict[str, Any]] = []
        for partition in partitions:
            entry = committed.get((topic, partition))
            rows.append(
                {
                    "partition_index": partition,
                    "committed_offset": -1 if entry is None else entry.offset,
                    "committed_leader_epoch": -1 if entry is None else entry.leader_epoch,
                    "metadata": "" if entry is None else entry.metadata,
                }
            )
        out.append((topic, rows))
    return out


async def list_groups(
    broker: Broker, header: RequestHeader, body: ListGroupsRequest
) -> ListGroupsResponse:
    """The groups this node coordinates (a cluster's clients ask every broker and merge)."""
    states: dict[str, tuple[str, str]] = {}  # group id -> (state, protocol type)
    for group_id in await broker.group_store.groups_with_offsets():
        states[group_id] = (EMPTY, "consumer")
    for stored in await broker.group_store.list_stored():
        # Loaded as DescribeGroups loads it, so both answer the same state, and the members
        # of a record left by a dead coordinator (or a restart) expire unless they heartbeat.
        if await _group(broker, stored.group_id) is not None:
            states[stored.group_id] = (EMPTY, stored.protocol_type or "consumer")
    for group_id, group in broker.coordinator.groups.items():
        if group.members or group_id in states:
            states[group_id] = (group.state, group.protocol_type or "consumer")
    wanted_states = {s.lower() for s in body.states_filter}
    wanted_types = {t.lower() for t in body.types_filter}
    groups = [
        ListedGroup(group_id=group_id, protocol_type=ptype, group_state=state, group_type="classic")
        for group_id, (state, ptype) in sorted(states.items())
        if broker.brokers.coordinates(group_id)
        and (not wanted_states or state.lower() in wanted_states)
        and (not wanted_types or "classic" in wanted_types)
    ]
    return ListGroupsResponse(groups=groups)


async def describe_groups(
    broker: Broker, header: RequestHeader, body: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    described: list[DescribedGroup] = []
    for group_id in body.groups:
        group = await _group(broker, group_id)
        if group is None:
            described.append(
                DescribedGroup(group_id=group_id, error_code=ErrorCode.NOT_COORDINATOR)
            )
            continue
        if group.members or group.generation:
            described.append(
                DescribedGroup(
                    group_id=group_id,
                    group_state=group.state,
                    protocol_type=group.protocol_type or "",
                    protocol_data=group.protocol_name or "",
                    members=[
                        DescribedGroupMember(
                            member_id=m.member_id,
                            group_instance_id=m.group_instance_id,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            member_metadata=m.metadata(group.protocol_name),
                            member_assignment=m.assignment,
                        )
                        for m in group.members.values()
                    ],
                )
            )
            continue
        committed = await broker.group_store.committed(group_id)
        state = EMPTY if committed else _DEAD
        described.append(
            DescribedGroup(
                group_id=group_id,
                group_state=state,
                protocol_type="consumer" if committed else "",
            )
        )
    return DescribeGroupsResponse(groups=described)
