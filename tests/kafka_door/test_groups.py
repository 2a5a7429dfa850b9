"""The classic group protocol spoken by hand against a real ``millstream serve``: member ids,
rebalances when members come and go, session-timeout eviction, generation fencing of commits,
DescribeGroups/ListGroups, and committed offsets and generations that survive a restart."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from millstream.server.kafka import codec
from servers import ServerProcess, millstream_argv

from .wire import Wire

pytestmark = pytest.mark.timeout(120)

E = codec.ErrorCode
GROUP = "hand-group"
SESSION_MS = 2000


def join(wire: Wire, member_id: str = "", *, metadata: bytes = b"meta") -> Any:
    return wire.call(
        codec.JoinGroupRequest(
            group_id=GROUP,
            session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=10_000,
            member_id=member_id,
            protocol_type="consumer",
            protocols=[codec.JoinGroupRequestProtocol(name="range", metadata=metadata)],
        ),
        5,
    )


def join_in_thread(wire: Wire, member_id: str, out: dict[str, Any], key: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.__setitem__(key, join(wire, member_id)))
    thread.start()
    return thread


def sync(wire: Wire, member_id: str, generation: int, assignments: dict[str, bytes]) -> Any:
    return wire.call(
        codec.SyncGroupRequest(
            group_id=GROUP,
            generation_id=generation,
            member_id=member_id,
            assignments=[
                codec.SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in assignments.items()
            ],
        ),
        3,
    )


def heartbeat(wire: Wire, member_id: str, generation: int) -> int:
    response = wire.call(
        codec.HeartbeatRequest(group_id=GROUP, generation_id=generation, member_id=member_id), 3
    )
    return int(response.error_code)


def commit(wire: Wire, member_id: str, generation: int, offset: int) -> int:
    response = wire.call(
        codec.OffsetCommitRequest(
            group_id=GROUP,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            topics=[
                codec.OffsetCommitRequestTopic(
                    name="orders",
                    partitions=[
                        codec.OffsetCommitRequestPartition(
                            partition_index=0, committed_offset=offset
                        )
                    ],
                )
            ],
        ),
        7,
    )
    return int(response.topics[0].partitions[0].error_code)


def committed(wire: Wire) -> int:
    response = wire.call(
        codec.OffsetFetchRequest(
            group_id=GROUP,
            topics=[codec.OffsetFetchRequestTopic(name="orders", partition_indexes=[0])],
        ),
        5,
    )
    return int(response.topics[0].partitions[0].committed_offset)


def describe(wire: Wire) -> Any:
    return wire.call(codec.DescribeGroupsRequest(groups=[GROUP]), 4).groups[0]


def wait_for_state(wire: Wire, state: str) -> None:
    for _ in range(200):
        if describe(wire).group_state == state:
            return
        time.sleep(0.05)
    pytest.fail(f"the group never reached {state}")


def test_members_rebalance_fence_expire_and_persist(tmp_path: Path) -> None:
    argv = millstream_argv("--data-dir", str(tmp_path))
    server = ServerProcess(argv)
    try:
        with contextlib.ExitStack() as wires:
            a, b, admin = (wires.enter_context(Wire(server.kafka)) for _ in range(3))
            generation = _rebalances(a, b, admin)
    finally:
        server.terminate()

    restarted = ServerProcess(argv)
    try:
        with Wire(restarted.kafka) as wire:
            assert committed(wire) == 13
            assert describe(wire).group_state == "Empty"
            member = join(wire).member_id
            again = join(wire, member)
            assert again.generation_id > generation + 1  # generations never repeat
    finally:
        restarted.terminate()


def _rebalances(a: Wire, b: Wire, admin: Wire) -> int:
    """The group's life on one node; returns its last generation."""
    first = join(a)
    assert first.error_code == E.MEMBER_ID_REQUIRED  # KIP-394: ask, then join with it
    member_a = first.member_id
    assert member_a
    joined = join(a, member_a)
    assert joined.error_code == 0
    assert joined.leader == member_a
    assert [m.member_id for m in joined.members] == [member_a]
    generation = joined.generation_id
    assert sync(a, member_a, generation, {member_a: b"all"}).assignment == b"all"
    assert heartbeat(a, member_a, generation) == 0
    assert commit(a, member_a, generation, 10) == 0

    # B joins: A learns by heartbeat, rejoins, both get the next generation.
    member_b = join(b).member_id
    results: dict[str, Any] = {}
    waiting_b = join_in_thread(b, member_b, results, "b")
    wait_for_state(admin, "PreparingRebalance")  # B's join has arrived and parked
    assert heartbeat(a, member_a, generation) == E.REBALANCE_IN_PROGRESS
    assert commit(a, member_a, generation, 11) == 0  # preparing: the old generation commits
    rejoined = join(a, member_a, metadata=b"meta-a")
    waiting_b.join(10)
    assert rejoined.error_code == 0
    assert results["b"].error_code == 0
    assert rejoined.generation_id == results["b"].generation_id == generation + 1
    assert rejoined.leader == member_a  # the leader stays
    assert {m.member_id: m.metadata for m in rejoined.members} == {
        member_a: b"meta-a",
        member_b: b"meta",
    }
    assert results["b"].members == []  # only the leader gets them
    old, generation = generation, rejoined.generation_id
    synced_b: dict[str, Any] = {}
    follower = threading.Thread(
        target=lambda: synced_b.__setitem__("r", sync(b, member_b, generation, {}))
    )
    follower.start()  # parks until the leader's assignment arrives
    assert sync(a, member_a, generation, {member_a: b"p0", member_b: b"p1"}).assignment == b"p0"
    follower.join(10)
    assert synced_b["r"].assignment == b"p1"

    assert commit(a, member_a, old, 12) == E.ILLEGAL_GENERATION  # fenced
    assert commit(a, "nobody", generation, 12) == E.UNKNOWN_MEMBER_ID
    assert commit(a, member_a, generation, 13) == 0
    assert committed(admin) == 13
    described = describe(admin)
    assert described.group_state == "Stable"
    assert described.protocol_data == "range"
    assert {m.member_id: m.member_assignment for m in described.members} == {
        member_a: b"p0",
        member_b: b"p1",
    }
    listed = admin.call(codec.ListGroupsRequest(), 2).groups
    assert [(g.group_id, g.protocol_type) for g in listed if g.group_id == GROUP] == [
        (GROUP, "consumer")
    ]

    # B goes silent: after its session timeout A is told to rejoin, and is alone.
    deadline = threading.Event()
    for _ in range(50):
        code = heartbeat(a, member_a, generation)
        if code == E.REBALANCE_IN_PROGRESS:
            break
        assert code == 0
        deadline.wait(0.2)
    else:
        pytest.fail("B was never evicted")
    alone = join(a, member_a)
    assert alone.generation_id == generation + 1
    assert [m.member_id for m in alone.members] == [member_a]
    assert heartbeat(b, member_b, generation) == E.UNKNOWN_MEMBER_ID
    generation = alone.generation_id
    sync(a, member_a, generation, {member_a: b"all"})

    left = a.call(
        codec.LeaveGroupRequest(group_id=GROUP, members=[codec.MemberIdentity(member_id=member_a)]),
        3,
    )
    assert left.members[0].error_code == 0
    assert describe(admin).group_state == "Empty"
    return generation


def listed_state(wire: Wire) -> str | None:
    groups = wire.call(codec.ListGroupsRequest(), 4).groups  # states from v4
    return next((g.group_state for g in groups if g.group_id == GROUP), None)


def test_a_group_left_stable_by_a_killed_node_is_listed_as_described(tmp_path: Path) -> None:
    """After ``kill -9`` the record still names a Stable group's member: ListGroups alone
    (nothing else asks for the group) continues it, and it empties when the silent member's
    session ends, as DescribeGroups then says too."""
    argv = millstream_argv("--data-dir", str(tmp_path))
    server = ServerProcess(argv)
    try:
        with Wire(server.kafka) as wire:
            member = join(wire).member_id
            joined = join(wire, member)
            assert sync(wire, member, joined.generation_id, {member: b"p"}).error_code == 0
            assert listed_state(wire) == "Stable"
    finally:
        server.kill()

    restarted = ServerProcess(argv)
    try:
        with Wire(restarted.kafka) as wire:
            assert listed_state(wire) == "Stable"  # continued from the record, not forgotten
            deadline = time.monotonic() + 30
            while listed_state(wire) != "Empty":
                assert time.monotonic() < deadline, "the silent member never expired"
                time.sleep(0.05)
            assert describe(wire).group_state == "Empty"
    finally:
        restarted.terminate()
