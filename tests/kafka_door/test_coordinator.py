"""The group state machine in-process (``_coordinator``): the timing rules that real clients
rarely exercise — rebalance timeouts, protocol votes and mismatches, pending member ids."""

from __future__ import annotations

import asyncio

import pytest

from millstream.server.kafka._coordinator import Group, GroupCoordinator
from millstream.server.kafka.codec import ErrorCode as E

pytestmark = pytest.mark.timeout(60)


def coordinator() -> tuple[GroupCoordinator, list[tuple[int, str]]]:
    saved: list[tuple[int, str]] = []
    return GroupCoordinator(
        lambda g: saved.append((g.generation, g.state)), initial_delay=0.05
    ), saved


def join(
    group: Group,
    member_id: str = "",
    *,
    protocols: tuple[str, ...] = ("range",),
    rebalance_ms: int = 1000,
    session_ms: int = 1000,
    protocol_type: str = "consumer",
    known: bool = False,
) -> asyncio.Future:  # type: ignore[type-arg]
    return group.join(
        member_id,
        group_instance_id=None,
        client_id="c",
        client_host="h",
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=rebalance_ms,
        protocol_type=protocol_type,
        protocols=[(name, name.encode()) for name in protocols],
        require_known_id=known,
    )


async def test_members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() -> None:
    groups, saved = coordinator()
    group = groups.group("g")
    a_future = join(group)
    b_future = join(group)  # joins during the initial delay: one generation for both
    a, b = await a_future, await b_future
    assert a.generation == b.generation == 1
    assert {m for m, _, _ in a.members} | {m for m, _, _ in b.members} == {a.member_id, b.member_id}
    group.sync(a.leader, 1, {})
    c = join(group, rebalance_ms=300)  # a newcomer: everyone must rejoin
    rejoined = join(group, a.member_id)  # a rejoins, b never does
    outcome = await asyncio.wait_for(rejoined, 3)
    assert outcome.generation == 2
    assert {m for m, _, _ in outcome.members} == {a.member_id, (await c).member_id}
    assert group.heartbeat(b.member_id, 1) == E.UNKNOWN_MEMBER_ID
    assert [g for g, _ in saved] == [1, 1, 2]  # each generation, and the stable assignment


async def test_protocols_are_voted_and_mismatches_refused() -> None:
    groups, _ = coordinator()
    group = groups.group("g")
    first = join(group, protocols=("range", "roundrobin"))
    second = join(group, protocols=("roundrobin", "sticky"))
    assert (await first).protocol_name == (await second).protocol_name == "roundrobin"
    refused = await join(group, protocols=("cooperative-sticky",))
    assert refused.error == E.INCONSISTENT_GROUP_PROTOCOL
    bad_type = await join(group, protocol_type="connect")
    assert bad_type.error == E.INCONSISTENT_GROUP_PROTOCOL
    too_short = await join(group, session_ms=10)
    assert too_short.error == E.INVALID_SESSION_TIMEOUT


async def test_pending_member_ids_expire_and_unknown_ids_are_refused() -> None:
    groups, _ = coordinator()
    group = groups.group("g")
    asked = await join(group, known=True)
    assert asked.error == E.MEMBER_ID_REQUIRED
    assert asked.member_id in group.pending
    assert (await join(group, "made-up")).error == E.UNKNOWN_MEMBER_ID
    await asyncio.sleep(1.2)  # one session timeout
    assert not group.pending
    assert (await join(group, asked.member_id)).error == E.UNKNOWN_MEMBER_ID


async def test_sync_rules_and_commit_rules() -> None:
    groups, _ = coordinator()
    group = groups.group("g")
    a = join(group)
    b = join(group)
    first, second = await a, await b
    follower = second if first.leader == first.member_id else first
    leader = first if follower is second else second
    assert (await group.sync("stranger", 1, {})).error == E.UNKNOWN_MEMBER_ID
    assert (await group.sync(follower.member_id, 0, {})).error == E.ILLEGAL_GENERATION
    assert group.commit_error(follower.member_id, 1) == E.REBALANCE_IN_PROGRESS  # not synced
    parked = group.sync(follower.member_id, 1, {})
    assert not parked.done()
    done = await group.sync(leader.member_id, 1, {follower.member_id: b"x"})
    assert done.error == E.NONE
    assert (await parked).assignment == b"x"
    assert group.commit_error(follower.member_id, 1) is None
    assert group.commit_error("", -1) == E.UNKNOWN_MEMBER_ID  # simple commits need no members
    assert group.leave(follower.member_id) == E.NONE
    assert group.leave(leader.member_id) == E.NONE
    await asyncio.sleep(0)
    assert group.state == "Empty"
    assert group.commit_error("", -1) is None


async def test_a_closed_coordinator_answers_parked_requests_and_parks_no_more() -> None:
    groups, _ = coordinator()
    group = groups.group("g")
    parked = join(group)  # waits for the initial delay
    groups.close()
    assert (await parked).error == E.COORDINATOR_NOT_AVAILABLE
    assert (await join(group)).error == E.COORDINATOR_NOT_AVAILABLE
    assert (await group.sync("m", 1, {})).error == E.COORDINATOR_NOT_AVAILABLE
