"""A raw Kafka connection for tests: the codec's client half over a blocking socket."""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from millstream.log import KafkaBatch, split_batches
from millstream.server.kafka import codec


class Wire:
    """Send typed requests, read typed responses; or raw bytes for hostile tests."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, body: Any, version: int, *, client_id: str | None = "tests") -> int:
        self._correlation += 1
        header = codec.RequestHeader(body.API_KEY, version, self._correlation, client_id)
        self.sock.sendall(codec.encode_request(header, body))
        return self._correlation

    def receive(self, body_type: type, version: int) -> Any:
        frame = self.read_frame()
        assert frame is not None, "the connection closed"
        _, response = codec.decode_response(body_type.API_KEY, version, frame)
        return response

    def call(self, body: Any, version: int) -> Any:
        correlation = self.send(body, version)
        frame = self.read_frame()
        assert frame is not None, "the connection closed"
        got, response = codec.decode_response(body.API_KEY, version, frame)
        assert got == correlation
        return response

    def read_frame(self) -> bytes | None:
        """One response frame, or ``None`` when the server closed the connection."""
        head = self._read(4)
        if head is None:
            return None
        (size,) = struct.unpack(">i", head)
        return self._read(size)

    def _read(self, count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            try:
                chunk = self.sock.recv(count - len(data))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (waits up to the socket timeout)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def stored_batches(bootstrap: str, topic: str, partition: int = 0) -> list[KafkaBatch]:
    """The record batches a partition holds, as a raw Fetch from offset 0 returns them."""
    request = codec.FetchRequest(
        max_wait_ms=0,
        topics=[
            codec.FetchTopic(
                topic=topic,
                partitions=[codec.FetchPartition(partition=partition, partition_max_bytes=1 << 20)],
            )
        ],
    )
    with Wire(bootstrap) as wire:
        response = wire.call(request, 11)
    (data,) = response.responses[0].partitions
    assert data.error_code == 0, data
    return split_batches(bytes(data.records or b""))


def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: Sequence[int]
) -> dict[int, int]:
    """The offsets the broker holds for ``group`` (-1 where none), by a raw OffsetFetch."""
    request = codec.OffsetFetchRequest(
        group_id=group,
        topics=[codec.OffsetFetchRequestTopic(name=topic, partition_indexes=list(partitions))],
    )
    with Wire(bootstrap) as wire:
        response = wire.call(request, 5)
    return {p.partition_index: p.committed_offset for p in response.topics[0].partitions}


def create_topic(
    bootstrap: str, name: str, partitions: int, configs: Mapping[str, str] | None = None
) -> None:
    """Test set-up for clients without an admin API: a raw CreateTopics."""
    request = codec.CreateTopicsRequest(
        topics=[
            codec.CreatableTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=1,
                configs=[
                    codec.CreatableTopicConfig(name=key, value=value)
                    for key, value in (configs or {}).items()
                ],
            )
        ],
        timeout_ms=10_000,
    )
    with Wire(bootstrap) as wire:
        (result,) = wire.call(request, 5).topics
    assert result.error_code == 0, result
