"""The values the admin client returns, and the JSON of the broker's HTTP admin API.

These shapes are shared: millstream's admin service (``millstream.services.kafka_admin``)
builds its responses with ``to_json()`` and the SDK reads them with ``from_json()``, so the two
cannot drift apart (DESIGN.md: a shape shared by an SDK and a service lives in the SDK).

    GET /v1/topics                         [TopicInfo]           (names starting "__" hidden)
    GET /v1/topics/{name}                  TopicInfo with partition_info
    GET /v1/cluster                        ClusterInfo
    GET /v1/consumer-groups/{g}/lag        ConsumerGroupLag
    GET /v1/consumer-groups/{g}/lag/{t}    ConsumerGroupLag of one topic
    GET /v1/inspect/{topic}?partition=&offset=&limit=    [InspectedMessage]
    GET /v1/inspect/{topic}/latest?count=                [InspectedMessage]
    errors: {"error": {"code": "...", "message": "..."}} with a 4xx/5xx status
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BrokerInfo",
    "ClusterInfo",
    "ConsumerGroupInfo",
    "ConsumerGroupLag",
    "ConsumerLag",
    "GroupMember",
    "InspectedMessage",
    "PartitionInfo",
    "TopicConfig",
    "TopicInfo",
    "decode_bytes",
    "encode_bytes",
]


@dataclass
class TopicConfig:
    """What ``Admin.create_topic`` creates; ``config`` holds topic settings such as
    ``{"retention.ms": "86400000"}``."""

    name: str
    num_partitions: int = 1
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class PartitionInfo:
    """One partition: its leader and replicas (millstream is one broker) and its offsets."""

    id: int
    leader: int
    replicas: list[int]
    isr: list[int]
    log_start_offset: int = 0
    high_watermark: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.id,
            "leader": self.leader,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
            "log_start_offset": self.log_start_offset,
            "high_watermark": self.high_watermark,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionInfo:
        return cls(
            id=int(data.get("partition", data.get("id", 0))),
            leader=int(data.get("leader", -1)),
            replicas=[int(r) for r in data.get("replicas", [])],
            isr=[int(r) for r in data.get("isr", [])],
            log_start_offset=int(data.get("log_start_offset", 0)),
            high_watermark=int(data.get("high_watermark", 0)),
        )


@dataclass
class TopicInfo:
    """A topic: ``partitions`` is the partition count; ``partition_info`` the details
    (filled by ``describe_topic``, empty in ``list_topics``)."""

    name: str
    partitions: int
    replication_factor: int
    internal: bool = False
    partition_info: list[PartitionInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "internal": self.internal,
        }
        if self.partition_info:
            data["partition_info"] = [p.to_json() for p in self.partition_info]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TopicInfo:
        name = str(data["name"])
        return cls(
            name=name,
            partitions=int(data.get("partitions", 0)),
            replication_factor=int(data.get("replication_factor", 1)),
            internal=bool(data.get("internal", name.startswith("__"))),
            partition_info=[PartitionInfo.from_json(p) for p in data.get("partition_info", [])],
        )


@dataclass
class BrokerInfo:
    id: int = 0
    host: str = ""
    port: int = 9092
    rack: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "port": self.port, "rack": self.rack}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BrokerInfo:
        rack = data.get("rack")
        return cls(
            id=int(data.get("id", 0)),
            host=str(data.get("host", "")),
            port=int(data.get("port", 9092)),
            rack=None if rack is None else str(rack),
        )


@dataclass
class ClusterInfo:
    cluster_id: str = ""
    broker_id: int = 0
    brokers: list[BrokerInfo] = field(default_factory=list)
    controller: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "broker_id": self.broker_id,
            "brokers": [b.to_json() for b in self.brokers],
            "controller": self.controller,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterInfo:
        return cls(
            cluster_id=str(data.get("cluster_id", "")),
            broker_id=int(data.get("broker_id", 0)),
            brokers=[BrokerInfo.from_json(b) for b in data.get("brokers", [])],
            controller=int(data.get("controller", -1)),
        )


@dataclass
class ConsumerLag:
    """How far a group's committed offset trails the end of one partition."""

    topic: str = ""
    partition: int = 0
    current_offset: int = 0
    end_offset: int = 0
    lag: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "current_offset": self.current_offset,
            "end_offset": self.end_offset,
            "lag": self.lag,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerLag:
        return cls(
            topic=str(data.get("topic", "")),
            partition=int(data.get("partition", 0)),
            current_offset=int(data.get("current_offset", 0)),
            end_offset=int(data.get("end_offset", 0)),
            lag=int(data.get("lag", 0)),
        )


@dataclass
class ConsumerGroupLag:
    group_id: str = ""
    partitions: list[ConsumerLag] = field(default_factory=list)
    total_lag: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "partitions": [p.to_json() for p in self.partitions],
            "total_lag": self.total_lag,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerGroupLag:
        partitions = [ConsumerLag.from_json(p) for p in data.get("partitions", [])]
        return cls(
            group_id=str(data.get("group_id", "")),
            partitions=partitions,
            total_lag=int(data.get("total_lag", sum(p.lag for p in partitions))),
        )


def encode_bytes(data: bytes | None) -> tuple[str | None, str]:
    """Record bytes as JSON text: ``(text, "utf-8")`` when they are UTF-8, else base64."""
    if data is None:
        return None, "utf-8"
    try:
        return data.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def decode_bytes(text: str | None, encoding: str) -> bytes | None:
    """The inverse of ``encode_bytes``."""
    if text is None:
        return None
    return base64.b64decode(text) if encoding == "base64" else text.encode()


@dataclass
class InspectedMessage:
    """A record as the inspection API shows it: key and value as text when they are UTF-8,
    else base64 (``key_encoding``/``value_encoding`` say which; ``value_bytes()`` undoes it);
    header values likewise, the base64 ones named in ``binary_headers``."""

    offset: int = 0
    key: str | None = None
    value: str | None = ""
    timestamp: int = 0
    partition: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    key_encoding: str = "utf-8"
    value_encoding: str = "utf-8"
    binary_headers: list[str] = field(default_factory=list)

    def key_bytes(self) -> bytes | None:
        return decode_bytes(self.key, self.key_encoding)

    def value_bytes(self) -> bytes | None:
        return decode_bytes(self.value, self.value_encoding)

    @classmethod
    def from_record(
        cls,
        *,
        partition: int,
        offset: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] = (),
    ) -> InspectedMessage:
        key_text, key_encoding = encode_bytes(key)
        value_text, value_encoding = encode_bytes(value)
        texts: dict[str, str] = {}
        binary: list[str] = []
        for name, raw in headers:
            text, encoding = encode_bytes(raw)
            texts[name] = text or ""
            if encoding == "base64" and name not in binary:
                binary.append(name)
            elif encoding != "base64" and name in binary:
                binary.remove(name)
        return cls(
            offset=offset,
            key=key_text,
            value=value_text,
            timestamp=timestamp,
            partition=partition,
            headers=texts,
            key_encoding=key_encoding,
            value_encoding=value_encoding,
            binary_headers=binary,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": self.key,
            "value": self.value,
            "headers": dict(self.headers),
            "key_encoding": self.key_encoding,
            "value_encoding": self.value_encoding,
            "binary_headers": list(self.binary_headers),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InspectedMessage:
        key = data.get("key")
        value = data.get("value")
        return cls(
            offset=int(data.get("offset", 0)),
            key=None if key is None else str(key),
            value=None if value is None else str(value),
            timestamp=int(data.get("timestamp", 0)),
            partition=int(data.get("partition", 0)),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            key_encoding=str(data.get("key_encoding", "utf-8")),
            value_encoding=str(data.get("value_encoding", "utf-8")),
            binary_headers=[str(h) for h in data.get("binary_headers", [])],
        )


@dataclass
class GroupMember:
    """One member of a consumer group and the partitions assigned to it."""

    member_id: str
    client_id: str
    host: str
    assignment: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class ConsumerGroupInfo:
    group_id: str
    state: str
    protocol: str
    members: list[GroupMember] = field(default_factory=list)
    protocol_type: str = ""
