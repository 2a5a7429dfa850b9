"""Consumer groups, the classic protocol: membership, rebalances, generations.

Rules for editing this file: every state change happens in a method of ``Group`` without an
``await`` inside it, so no two requests interleave halfway through one; requests that must wait
(JoinGroup until the rebalance completes, SyncGroup until the leader's assignment arrives) park
on a future of their member. Durable effects (the generation, committed offsets) are written by
``_group_store`` after the state change and before the answer.

States (Kafka's ``GroupState`` names, as DescribeGroups and ListGroups report them):

- ``Empty``: no members (committed offsets may exist). A JoinGroup starts a rebalance.
- ``PreparingRebalance``: every member must (re)join. Joins park. The rebalance completes when
  every known member has joined, or when the rebalance timeout (the largest of the members')
  runs out, when those that did not rejoin are removed. A first rebalance of an empty group
  waits ``initial_delay`` for more members (Kafka's group.initial.rebalance.delay.ms).
- ``CompletingRebalance``: the generation is new; joins were answered (the leader got every
  member's metadata); SyncGroup requests park until the leader sends the assignment.
- ``Stable``: the assignment is out; heartbeats keep members alive.

A member that does not heartbeat (or join, or sync) within its session timeout is removed, and
a rebalance follows; while a join or sync of the member is parked it cannot expire. A member
rejoining with changed subscriptions, a new member, and a member leaving all start a rebalance.
JoinGroup v4+ without a member id is answered MEMBER_ID_REQUIRED with a new id (KIP-394), so a
client that times out and retries never leaves a ghost member behind. Static membership
(KIP-345 ``group.instance.id``) is accepted as an ordinary dynamic member.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .codec import ErrorCode

if TYPE_CHECKING:
    from ._group_store import StoredGroup

__all__ = ["Group", "GroupCoordinator", "JoinOutcome", "Member", "SyncOutcome"]

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"

MIN_SESSION_TIMEOUT_MS = 1_000  # Kafka's group.min.session.timeout.ms is 6 s; tests use less
MAX_SESSION_TIMEOUT_MS = 1_800_000  # group.max.session.timeout.ms


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    """What a JoinGroup is answered."""

    error: ErrorCode
    member_id: str = ""
    generation: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    #: (member id, group instance id, metadata): only the leader gets them
    members: Sequence[tuple[str, str | None, bytes]] = ()


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout: float  # seconds
    rebalance_timeout: float  # seconds
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    joined: asyncio.Future[JoinOutcome] | None = None  # a parked JoinGroup
    synced: asyncio.Future[SyncOutcome] | None = None  # a parked SyncGroup
    timer: asyncio.TimerHandle | None = None  # session expiry

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""


@dataclass(slots=True)
class Group:
    """One group's membership; ``coordinator`` gets told about expiries and generations."""

    group_id: str
    coordinator: GroupCoordinator
    generation: int = 0
    state: str = EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    #: ids handed out by MEMBER_ID_REQUIRED, forgotten after a session timeout if unused
    pending: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    rebalance_timer: asyncio.TimerHandle | None = None
    initial: bool = False  # the rebalance timer is the initial delay of an empty group
    #: set when the group is closed (shutdown, or another node coordinates it now): what
    #: requests still reaching this object are answered
    closed: ErrorCode | None = None

    # -- joining ---------------------------------------------------------------------------

    def join(
        self,
        member_id: str,
        *,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_id: bool,
    ) -> asyncio.Future[JoinOutcome]:
        """Handle a JoinGroup; the future resolves when the rebalance completes."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[JoinOutcome] = loop.create_future()
        if self.closed is not None:  # shutting down or moved: nothing may park any more
            answer.set_result(JoinOutcome(self.closed, member_id))
            return answer
        if not MIN_SESSION_TIMEOUT_MS <= session_timeout_ms <= MAX_SESSION_TIMEOUT_MS:
            answer.set_result(JoinOutcome(ErrorCode.INVALID_SESSION_TIMEOUT, member_id))
            return answer
        if not protocols or not protocol_type:
            answer.set_result(JoinOutcome(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return answer
        if self.state != EMPTY and self.protocol_type not in (None, protocol_type):
            answer.set_result(JoinOutcome(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return answer
        if not self._compatible({name for name, _ in protocols}):
            answer.set_result(JoinOutcome(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id))
            return answer
        if not member_id:
            member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if require_known_id:
                self.pending[member_id] = loop.call_later(
                    session_timeout_ms / 1000, self.pending.pop, member_id, None
                )
                answer.set_result(JoinOutcome(ErrorCode.MEMBER_ID_REQUIRED, member_id))
                return answer
        elif member_id not in self.members and member_id not in self.pending:
            answer.set_result(JoinOutcome(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
            return answer
        waiting = self.pending.pop(member_id, None)
        if waiting is not None:
            waiting.cancel()
        rebalance_ms = rebalance_timeout_ms if rebalance_timeout_ms > 0 else session_timeout_ms
        rebalance_timeout = rebalance_ms / 1000
        member = self.members.get(member_id)
        if member is None:
            member = Member(
                member_id,
                group_instance_id,
                client_id,
                client_host,
                session_timeout_ms / 1000,
                rebalance_timeout,
                protocol_type,
                protocols,
            )
            self.members[member_id] = member
        else:
            member.protocols = protocols
            member.session_timeout = session_timeout_ms / 1000
            member.rebalance_timeout = rebalance_timeout
            member.client_id, member.client_host = client_id, client_host
        self._stop_expiry(member)
        if member.joined is not None and not member.joined.done():
            # A retried join replaces the parked one, which will never be read.
            member.joined.set_result(JoinOutcome(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        member.joined = answer
        if self.state != PREPARING:
            self._prepare_rebalance()  # in this protocol, any join means everyone rejoins
        self._maybe_complete_join()
        return answer

    def _compatible(self, offered: set[str]) -> bool:
        """A joining member must share a protocol with every current member."""
        for member in self.members.values():
            if not offered & {name for name, _ in member.protocols}:
                return False
        return True

    def _prepare_rebalance(self) -> None:
        """Enter PreparingRebalance: every member must (re)join within the rebalance timeout."""
        for member in self.members.values():
            if member.synced is not None and not member.synced.done():
                member.synced.set_result(SyncOutcome(ErrorCode.REBALANCE_IN_PROGRESS))
        # An empty group's first rebalance waits a moment for more members; its members are
        # all joined by definition, so the timer then completes it.
        self.initial = self.state == EMPTY
        self.state = PREPARING
        if self.rebalance_timer is not None:
            self.rebalance_timer.cancel()
        timeout = max((m.rebalance_timeout for m in self.members.values()), default=0.0)
        if self.initial:
            timeout = min(timeout, self.coordinator.initial_delay)
        loop = asyncio.get_running_loop()
        self.rebalance_timer = loop.call_later(timeout, self._rebalance_timed_out)

    def _rebalance_timed_out(self) -> None:
        self.rebalance_timer = None
        self.initial = False
        if self.state != PREPARING:
            return
        for member_id, member in list(self.members.items()):
            if member.joined is None:
                self._remove(member_id)
        self._complete_join()

    def _maybe_complete_join(self) -> None:
        if self.state != PREPARING or self.initial:
            return
        if all(m.joined is not None for m in self.members.values()):
            self._complete_join()

    def _complete_join(self) -> None:
        """A new generation: answer every parked join (the leader with the members)."""
        if self.rebalance_timer is not None:
            self.rebalance_timer.cancel()
            self.rebalance_timer = None
        self.generation += 1
        if not self.members:
            self.state = EMPTY
            self.protocol_name = None
            self.leader = ""
            self.coordinator.generation_changed(self)
            return
        members = list(self.members.values())
        self.protocol_type = members[0].protocol_type
        self.protocol_name = _vote(members)
        if self.leader not in self.members:
            self.leader = members[0].member_id
        self.state = COMPLETING
        everyone = [
            (m.member_id, m.group_instance_id, m.metadata(self.protocol_name)) for m in members
        ]
        for member in members:
            member.assignment = b""
            future, member.joined = member.joined, None
            outcome = JoinOutcome(
                ErrorCode.NONE,
                member.member_id,
                self.generation,
                self.protocol_type,
                self.protocol_name,
                self.leader,
                everyone if member.member_id == self.leader else (),
            )
            if future is not None and not future.done():
                future.set_result(outcome)
            self._expire_later(member)
        self.coordinator.generation_changed(self)

    # -- syncing, heartbeats, leaving ----------------------------------------------------

    def sync(
        self, member_id: str, generation: int, assignments: dict[str, bytes]
    ) -> asyncio.Future[SyncOutcome]:
        answer: asyncio.Future[SyncOutcome] = asyncio.get_running_loop().create_future()
        member = self.members.get(member_id)
        if self.closed is not None:
            answer.set_result(SyncOutcome(self.closed))
        elif member is None:
            answer.set_result(SyncOutcome(ErrorCode.UNKNOWN_MEMBER_ID))
        elif generation != self.generation:
            answer.set_result(SyncOutcome(ErrorCode.ILLEGAL_GENERATION))
        elif self.state == PREPARING:
            answer.set_result(SyncOutcome(ErrorCode.REBALANCE_IN_PROGRESS))
        elif self.state == STABLE:
            answer.set_result(self._synced(member))
        else:  # COMPLETING
            self._touch(member)
            if member.synced is not None and not member.synced.done():
                member.synced.set_result(SyncOutcome(ErrorCode.REBALANCE_IN_PROGRESS))
            member.synced = answer
            self._stop_expiry(member)
            if member_id == self.leader:
                for other in self.members.values():
                    other.assignment = assignments.get(other.member_id, b"")
                self.state = STABLE
                for other in self.members.values():
                    future, other.synced = other.synced, None
                    if future is not None and not future.done():
                        future.set_result(self._synced(other))
                self.coordinator.generation_changed(self)
        return answer

    def _synced(self, member: Member) -> SyncOutcome:
        self._expire_later(member)
        return SyncOutcome(
            ErrorCode.NONE, member.assignment, self.protocol_type, self.protocol_name
        )

    def heartbeat(self, member_id: str, generation: int) -> ErrorCode:
        if self.closed is not None:
            return self.closed
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != self.generation:
            return ErrorCode.ILLEGAL_GENERATION
        if self.state == PREPARING:
            self._touch(member)
            return ErrorCode.REBALANCE_IN_PROGRESS
        self._touch(member)
        return ErrorCode.NONE

    def leave(self, member_id: str) -> ErrorCode:
        if self.closed is not None:
            return self.closed
        waiting = self.pending.pop(member_id, None)
        if waiting is not None:
            waiting.cancel()
            return ErrorCode.NONE
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._remove(member_id)
        self._membership_changed()
        return ErrorCode.NONE

    def commit_error(self, member_id: str, generation: int) -> ErrorCode | None:
        """Why an OffsetCommit of ``member_id`` at ``generation`` is refused, or ``None``."""
        if self.closed is not None:
            return self.closed
        if generation < 0 and not member_id:
            return None if not self.members else ErrorCode.UNKNOWN_MEMBER_ID
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != self.generation:
            return ErrorCode.ILLEGAL_GENERATION
        if self.state == COMPLETING:  # joined but not yet assigned: commit after the sync
            return ErrorCode.REBALANCE_IN_PROGRESS
        # While preparing a rebalance the old generation may still commit (e.g. on revoke);
        # heartbeats tell the member to rejoin.
        self._touch(member)
        return None

    # -- expiry ----------------------------------------------------------------------------

    def _touch(self, member: Member) -> None:
        if member.joined is None and member.synced is None:
            self._expire_later(member)

    def _expire_later(self, member: Member) -> None:
        self._stop_expiry(member)
        loop = asyncio.get_running_loop()
        member.timer = loop.call_later(member.session_timeout, self._expire, member.member_id)

    @staticmethod
    def _stop_expiry(member: Member) -> None:
        if member.timer is not None:
            member.timer.cancel()
            member.timer = None

    def _expire(self, member_id: str) -> None:
        member = self.members.get(member_id)
        if member is None or member.joined is not None or member.synced is not None:
            return
        member.timer = None
        self._remove(member_id)
        self._membership_changed()

    def _remove(self, member_id: str) -> None:
        member = self.members.pop(member_id)
        self._stop_expiry(member)
        if member.joined is not None and not member.joined.done():
            member.joined.set_result(JoinOutcome(ErrorCode.UNKNOWN_MEMBER_ID, member_id))
        if member.synced is not None and not member.synced.done():
            member.synced.set_result(SyncOutcome(ErrorCode.UNKNOWN_MEMBER_ID))
        if self.leader == member_id:
            self.leader = ""

    def _membership_changed(self) -> None:
        if self.state == PREPARING:
            self._maybe_complete_join()
        elif self.members:
            self._prepare_rebalance()
        else:
            self._complete_join()  # the last member left: an empty generation

    def close(self, error: ErrorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE) -> None:
        """Shutdown, or the group moved to another node: answer every parked request with
        ``error``, stop every timer, and answer ``error`` to anything later."""
        self.closed = error
        if self.rebalance_timer is not None:
            self.rebalance_timer.cancel()
        for waiting in self.pending.values():
            waiting.cancel()
        for member in self.members.values():
            self._stop_expiry(member)
            if member.joined is not None and not member.joined.done():
                member.joined.set_result(JoinOutcome(error))
            if member.synced is not None and not member.synced.done():
                member.synced.set_result(SyncOutcome(error))

    def restore(self, stored: StoredGroup) -> None:
        """Continue from a stored record (this node has just become the coordinator): a group
        that was Stable or CompletingRebalance keeps its generation, members and assignments,
        and each member must heartbeat within its session timeout from now."""
        self.generation = stored.generation
        self.protocol_type = stored.protocol_type
        if stored.state not in (STABLE, COMPLETING) or not stored.members:
            return
        self.state = stored.state
        self.protocol_name = stored.protocol
        self.leader = stored.leader
        for m in stored.members:
            member = Member(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.session_timeout_ms / 1000,
                m.rebalance_timeout_ms / 1000,
                stored.protocol_type or "",
                list(m.protocols),
                m.assignment,
            )
            self.members[m.member_id] = member
            self._expire_later(member)


def _vote(members: list[Member]) -> str:
    """The protocol every member supports that most members list first (Kafka's vote)."""
    common = set.intersection(*({name for name, _ in m.protocols} for m in members))
    votes: dict[str, int] = {}
    for member in members:
        for name, _ in member.protocols:
            if name in common:
                votes[name] = votes.get(name, 0) + 1
                break
    return max(votes, key=lambda name: votes[name])


class GroupCoordinator:
    """The groups this node coordinates, in memory; ``on_generation`` persists each new
    generation."""

    def __init__(
        self,
        on_generation: Callable[[Group], None],
        *,
        initial_delay: float = 0.1,
    ) -> None:
        self.groups: dict[str, Group] = {}
        self.initial_delay = initial_delay
        self.closed = False
        self._on_generation = on_generation

    def group(self, group_id: str, stored: StoredGroup | None = None) -> Group:
        """The group ``group_id``, created from its ``stored`` record if new here."""
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self)
            if stored is not None:
                group.restore(stored)
            if self.closed:
                group.close()
        return group

    def generation_changed(self, group: Group) -> None:
        if self.groups.get(group.group_id) is group:  # not a group dropped meanwhile
            self._on_generation(group)

    def drop(self, group_id: str) -> None:
        """Another node coordinates ``group_id`` now: answer its parked requests
        NOT_COORDINATOR and forget it (it is reloaded if it comes back)."""
        group = self.groups.pop(group_id, None)
        if group is not None:
            group.close(ErrorCode.NOT_COORDINATOR)

    def close(self) -> None:
        """Shutdown: answer parked requests now and refuse to park new ones."""
        self.closed = True
        for group in self.groups.values():
            group.close()
