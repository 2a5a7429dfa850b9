"""What the client matrix asks of a Kafka client: one small vocabulary, five translations.

Each scenario of ``test_matrix.py`` is written once against ``Client`` and ``Consumer``; each
client module translates these calls into that client's own API, called as its users would.
A call the client cannot make at all raises ``NotAvailable`` with the reason (the matrix shows
the cell as n/a); an error the broker answered reaches the scenario as ``KafkaCallError`` with
Kafka's error code, whatever exception type the client wraps it in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = [
    "Acks",
    "Client",
    "Cluster",
    "Compression",
    "Consumer",
    "Delivered",
    "GroupView",
    "Headers",
    "KafkaCallError",
    "NotAvailable",
    "OffsetSpec",
    "Received",
    "Record",
]

Headers = tuple[tuple[str, bytes], ...]
Acks = Literal["0", "1", "all"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
OffsetSpec = Literal["earliest", "latest"] | int  # an int is a timestamp in ms


class NotAvailable(Exception):
    """The client has no way to do this; ``str()`` says why."""


class KafkaCallError(Exception):
    """The broker answered a Kafka error ``code`` (``codec.ErrorCode``) to the client."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(f"Kafka error {code}: {detail}")
        self.code = code


@dataclass(frozen=True)
class Record:
    """A record to produce; ``partition``/``timestamp`` ``None`` leave them to the client."""

    value: bytes
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class Delivered:
    """Where a produced record landed; ``offset`` is -1 when acks=0 (no answer comes)."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Received:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int


@dataclass(frozen=True)
class Cluster:
    """What Metadata told the client: brokers (id, host, port) and topics' partition counts."""

    brokers: list[tuple[int, str, int]]
    topics: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupView:
    """What DescribeGroups told the client about one group."""

    state: str
    members: int


class Consumer:
    """A consumer as the scenarios drive it; every method is the client's own call."""

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        raise NotAvailable("no manual partition assignment")

    def subscribe(self, topic: str) -> None:
        raise NotAvailable("no group subscription")

    def assignment(self) -> set[int]:
        """Partitions the group currently gives this member."""
        raise NotAvailable("no view of the group assignment")

    def seek(self, topic: str, partition: int, offset: int) -> None:
        raise NotAvailable("no seek")

    def poll(self, count: int, timeout: float) -> list[Received]:
        """Records as the client hands them out, until at least ``count`` or ``timeout`` s.
        May return more than ``count`` (what one client call gave); never holds any back."""
        raise NotAvailable("no poll")

    def commit(self) -> None:
        """Commit the position after everything polled so far, synchronously."""
        raise NotAvailable("no commit")

    def commit_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        raise NotAvailable("no commit of given offsets")

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        raise NotAvailable("no committed-offset lookup")

    def close(self) -> None:
        """Leave the group (if any) and disconnect."""


class Client:
    """One Kafka client library pointed at ``bootstrap``."""

    name: ClassVar[str] = ""
    #: the compressions it can produce, the one it does best last
    compressions: ClassVar[tuple[Compression, ...]] = ("none", "gzip", "snappy", "lz4", "zstd")
    #: scenarios deliberately outside a client's (smaller) set: scenario -> why
    left_out: ClassVar[dict[str, str]] = {}
    #: what ``offsets`` reports for a time after the last record: Kafka's -1, or "latest"
    no_offset_at_time: ClassVar[str] = "-1"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def cluster(self) -> Cluster:
        raise NotAvailable("no metadata call")

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        raise NotAvailable("no admin API to create topics")

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> list[Delivered] | None:
        """Send ``records`` in order with one producer and wait until each is delivered;
        where each landed, or ``None`` if the client does not say."""
        raise NotAvailable("no producer")

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        """A consumer (in ``group`` if given; offsets reset to earliest, no auto-commit)."""
        raise NotAvailable("no consumer")

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        """ListOffsets: earliest, latest, or the first offset at or after a timestamp
        (-1 when there is none)."""
        raise NotAvailable("no offset lookup")

    def describe_configs(self, topic: str) -> dict[str, str]:
        raise NotAvailable("no admin API to describe configs")

    def list_groups(self) -> list[str]:
        raise NotAvailable("no admin API to list groups")

    def describe_group(self, group: str) -> GroupView:
        raise NotAvailable("no admin API to describe groups")

    def create_partitions(self, topic: str, total: int) -> None:
        raise NotAvailable("no admin API to create partitions")

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int] | None:
        """DeleteRecords up to ``before`` per partition; the new low watermarks, or ``None``
        if the client does not report them."""
        raise NotAvailable("no admin API to delete records")

    def delete_topic(self, name: str) -> None:
        raise NotAvailable("no admin API to delete topics")

    def close(self) -> None:
        """Release whatever the client holds (connections, threads, processes)."""
