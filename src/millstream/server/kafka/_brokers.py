"""Who leads what: the brokers Metadata lists, partition leaders and group coordinators.

Alone (no ``Membership``: the SQLite or memory store) the node is broker 0, the leader of every
partition and the coordinator of every group. In a cluster (nodes sharing a ``PostgresStore``)
every live node with a Kafka door is a broker under its claimed node id, and each partition and
each group belongs to one of them by rendezvous hashing over the live view
(``Membership.owner``). Any node could serve any partition, since the data is in the database;
leadership only spreads clients over the nodes, and a request for a partition or group that
another node owns is answered NOT_LEADER_OR_FOLLOWER or NOT_COORDINATOR so the client refreshes
its metadata and follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from millstream.log import Membership

__all__ = ["BrokerInfo", "Brokers"]

KAFKA = "kafka"  # the door's key in a node's published addresses


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Brokers:
    """The cluster as the Kafka door advertises it; ``host``/``port`` are this node's."""

    def __init__(self, host: str, port: int, members: Membership | None = None) -> None:
        self.host = host
        self.port = port
        self.members = members

    @property
    def node_id(self) -> int:
        return 0 if self.members is None else self.members.node_id

    def me(self) -> BrokerInfo:
        return BrokerInfo(self.node_id, self.host, self.port)

    def listed(self) -> list[BrokerInfo]:
        """Every live broker, by node id (this one always)."""
        if self.members is None:
            return [self.me()]
        out: list[BrokerInfo] = []
        for node in self.members.live():
            if node.node_id == self.node_id:
                out.append(self.me())
            elif KAFKA in node.addresses:
                host, port = split_address(node.addresses[KAFKA])
                out.append(BrokerInfo(node.node_id, host, port))
        return out

    def _owner(self, key: str) -> BrokerInfo:
        if self.members is None:
            return self.me()
        node = self.members.owner(key, KAFKA)
        if node.node_id == self.node_id or KAFKA not in node.addresses:
            return self.me()
        host, port = split_address(node.addresses[KAFKA])
        return BrokerInfo(node.node_id, host, port)

    def leader(self, topic: str, partition: int) -> BrokerInfo:
        return self._owner(f"partition\0{topic}\0{partition}")

    def leads(self, topic: str, partition: int) -> bool:
        return self.members is None or self.leader(topic, partition).node_id == self.node_id

    def coordinator(self, group_id: str) -> BrokerInfo:
        return self._owner(f"group\0{group_id}")

    def coordinates(self, group_id: str) -> bool:
        return self.members is None or self.coordinator(group_id).node_id == self.node_id

    def controller(self) -> int:
        """The node Metadata names controller (admin requests work on any node)."""
        return self.listed()[0].node_id
