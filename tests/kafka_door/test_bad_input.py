"""Hostile and broken Kafka input against a real ``millstream serve``: the right error code or
a closed connection, never a crash, a stuck connection or a change to stored data; other
connections keep working throughout."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import kafka.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from kafka.record.memory_records import MemoryRecordsBuilder

from millstream.server.kafka import codec
from servers import ServerProcess

from .conftest import kafka_node
from .wire import Wire, stored_batches

pytestmark = pytest.mark.timeout(180)

MAX_REQUEST = 64 * 1024
FRAME_TIMEOUT = 1.0
IDLE_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from kafka_node(
        tmp_path_factory.mktemp("bad-input"),
        "--kafka-max-request-size",
        str(MAX_REQUEST),
        "--kafka-frame-timeout",
        str(FRAME_TIMEOUT),
        "--kafka-idle-timeout",
        str(IDLE_TIMEOUT),
    )


def batch(*values: bytes, producer_id: int = -1, sequence: int = -1) -> bytes:
    builder = MemoryRecordsBuilder(
        magic=2,
        compression_type=0,
        batch_size=1 << 20,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=sequence,
    )
    for value in values:
        builder.append(int(time.time() * 1000), None, value)
    builder.close()
    return bytes(builder.buffer())


def produce(
    topic: str, records: bytes, *, partition: int = 0, acks: int = -1
) -> codec.ProduceRequest:
    return codec.ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[
            codec.TopicProduceData(
                name=topic,
                partition_data=[codec.PartitionProduceData(index=partition, records=records)],
            )
        ],
    )


def produce_error(wire: Wire, request: codec.ProduceRequest, version: int = 8) -> int:
    response = wire.call(request, version)
    (topic,) = response.responses
    (part,) = topic.partition_responses
    return int(part.error_code)


def latest(wire: Wire, topic: str, partition: int = 0) -> tuple[int, int]:
    """(error code, latest offset) of a partition."""
    request = codec.ListOffsetsRequest(
        replica_id=-1,
        topics=[
            codec.ListOffsetsTopic(
                name=topic,
                partitions=[codec.ListOffsetsPartition(partition_index=partition, timestamp=-1)],
            )
        ],
    )
    (topic_response,) = wire.call(request, 5).topics
    (part,) = topic_response.partitions
    return int(part.error_code), int(part.offset)


def still_serves(node: ServerProcess) -> None:
    """A fresh connection gets ApiVersions answered: the node is alive and well."""
    with Wire(node.kafka) as wire:
        response = wire.call(codec.ApiVersionsRequest(), 0)
        assert response.error_code == 0
        assert any(api.api_key == 0 for api in response.api_keys)
    assert node.process.poll() is None


def test_oversized_and_negative_frames_close_the_connection(node: ServerProcess) -> None:
    for size in (MAX_REQUEST + 1, 2**31 - 1, -1, -(2**31)):
        with Wire(node.kafka) as wire:
            wire.sock.sendall(struct.pack(">i", size) + b"\x00" * 16)
            assert wire.closed_by_server()
    still_serves(node)


def test_unknown_api_keys_and_versions(node: ServerProcess) -> None:
    with Wire(node.kafka) as wire:  # unknown key: closed
        wire.sock.sendall(struct.pack(">ihhih", 10, 999, 0, 1, -1))
        assert wire.closed_by_server()
    with Wire(node.kafka) as wire:  # Metadata v99: closed
        wire.sock.sendall(struct.pack(">ihhih", 10, 3, 99, 1, -1))
        assert wire.closed_by_server()
    with Wire(node.kafka) as wire:  # Fetch v3 (magic 0/1 answers): closed, as not listed
        wire.sock.sendall(struct.pack(">ihhih", 10, 1, 3, 1, -1))
        assert wire.closed_by_server()
    with Wire(node.kafka) as wire:  # ApiVersions v99: error 35, v0 body, connection kept
        wire.sock.sendall(struct.pack(">ihhih", 10, 18, 99, 7, -1))
        frame = wire.read_frame()
        assert frame is not None
        correlation, response = codec.decode_response(18, 0, frame)
        assert correlation == 7
        assert response.error_code == codec.ErrorCode.UNSUPPORTED_VERSION
        assert {api.api_key for api in response.api_keys} >= {0, 1, 3, 18}
        assert wire.call(codec.ApiVersionsRequest(), 3).error_code == 0
    still_serves(node)


@pytest.mark.parametrize("version", [0, 2, 8])
def test_a_truncated_body_closes_the_connection(
    node: ServerProcess, topic_name: str, version: int
) -> None:
    header = codec.RequestHeader(0, version, 1, "t")
    frame = codec.encode_request(header, produce(topic_name, batch(b"x")))
    with Wire(node.kafka) as wire:
        body = frame[4:-5]
        wire.sock.sendall(struct.pack(">i", len(body)) + body)
        assert wire.closed_by_server()
    with Wire(node.kafka) as wire:
        assert latest(wire, topic_name) == (codec.ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1)


def test_bytes_after_a_whole_body_are_ignored(node: ServerProcess, topic_name: str) -> None:
    """As Kafka's broker ignores them (librdkafka's all-topics Metadata v13 has three)."""
    header = codec.RequestHeader(0, 8, 1, "t")
    frame = codec.encode_request(header, produce(topic_name, batch(b"x")))
    with Wire(node.kafka) as wire:
        body = frame[4:] + b"\x01\x00\x00"
        wire.sock.sendall(struct.pack(">i", len(body)) + body)
        answer = wire.receive(codec.ProduceRequest, 8)
        assert answer.responses[0].partition_responses[0].error_code == 0
        assert latest(wire, topic_name) == (0, 1)


def test_a_wrong_crc_is_corrupt_message_and_stores_nothing(
    node: ServerProcess, topic_name: str
) -> None:
    good = batch(b"good")
    with Wire(node.kafka) as wire:
        assert produce_error(wire, produce(topic_name, good)) == 0
        corrupt = bytearray(batch(b"evil"))
        corrupt[-1] ^= 0xFF  # inside the records: covered by the CRC-32C
        assert (
            produce_error(wire, produce(topic_name, bytes(corrupt)))
            == codec.ErrorCode.CORRUPT_MESSAGE
        )
        short = good[:40]
        assert produce_error(wire, produce(topic_name, short)) == codec.ErrorCode.CORRUPT_MESSAGE
        assert latest(wire, topic_name) == (0, 1)


def message_set(magic: int, *values: bytes, compression: int = 0) -> bytes:
    """Records as a client older than Kafka 0.11 writes them: message format v0 or v1."""
    builder = MemoryRecordsBuilder(magic=magic, compression_type=compression, batch_size=1 << 20)
    for value in values:
        builder.append(int(time.time() * 1000), b"key", value)
    builder.close()
    return bytes(builder.buffer())


@pytest.mark.parametrize("version", [0, 1, 2, 3, 8, 10])
@pytest.mark.parametrize("compression", [0, 1])  # none, gzip (a v0/v1 wrapper message)
def test_old_message_formats_are_refused_and_store_nothing(
    node: ServerProcess, topic_name: str, version: int, compression: int
) -> None:
    """Produce v0-2 is listed for old librdkafka's codec check; what the clients that really
    send it write (magic 0/1) gets UNSUPPORTED_FOR_MESSAGE_FORMAT. From v3 a magic below 2
    breaks the protocol: INVALID_RECORD, as Kafka answers it."""
    expected = (
        codec.ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        if version < 3
        else codec.ErrorCode.INVALID_RECORD
    )
    with Wire(node.kafka) as wire:
        assert produce_error(wire, produce(topic_name, batch(b"kept")), version) == 0
        for magic in (0, 1):
            old = message_set(magic, b"old", b"older", compression=compression)
            assert produce_error(wire, produce(topic_name, old), version) == expected
            # a v0/v1 set behind a good batch is refused whole, as Kafka refuses it
            mixed = batch(b"new") + old
            assert produce_error(wire, produce(topic_name, mixed), version) != 0
        assert latest(wire, topic_name) == (0, 1)
    assert [b.record_count for b in stored_batches(node.kafka, topic_name)] == [1]


@pytest.mark.parametrize("version", [0, 1, 2])
def test_a_record_batch_in_produce_v0_to_v2_is_stored(
    node: ServerProcess, topic_name: str, version: int
) -> None:
    """Kafka's brokers accept a magic-2 batch in any Produce version; so does the door, and the
    answer has the fields of the version asked for (v0: no throttle time, v2: append time)."""
    sent = batch(b"a", b"b")
    with Wire(node.kafka) as wire:
        response = wire.call(produce(topic_name, sent), version)
        (part,) = response.responses[0].partition_responses
        assert (part.error_code, part.base_offset, part.log_append_time_ms) == (0, 0, -1)
        assert latest(wire, topic_name) == (0, 2)
    (stored,) = stored_batches(node.kafka, topic_name)
    assert stored.data[12:] == sent[12:]  # the producer's bytes past the base offset


def test_a_client_in_kafka_0_10_mode_is_told_its_format_is_unsupported(
    node: ServerProcess, topic_name: str
) -> None:
    """kafka-python pinned to Kafka 0.10.1 sends what such clients send: Produce v2 with a
    gzip-compressed magic-1 message set. It gets error 43 at once, and nothing is stored."""
    producer = KafkaProducer(
        bootstrap_servers=node.kafka,
        api_version=(0, 10, 1),
        compression_type="gzip",
        enable_idempotence=False,
        acks=1,
        retries=0,
    )
    try:
        with pytest.raises(kafka.errors.UnsupportedForMessageFormatError):
            producer.send(topic_name, b"from 2016").get(timeout=30)
    finally:
        producer.close()
    with Wire(node.kafka) as wire:
        assert latest(wire, topic_name) == (0, 0)


@given(records=st.binary(min_size=17, max_size=200), version=st.integers(0, 2))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_records_in_old_produce_versions_get_an_error_code_and_store_nothing(
    node: ServerProcess, records: bytes, version: int
) -> None:
    topic = "legacy-garbage"
    with Wire(node.kafka) as wire:
        code = produce_error(wire, produce(topic, records), version)
        assert code in (
            codec.ErrorCode.CORRUPT_MESSAGE,
            codec.ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        )
        assert latest(wire, topic) == (0, 0)


def test_message_max_bytes_per_topic(node: ServerProcess, topic_name: str) -> None:
    with Wire(node.kafka) as wire:
        created = wire.call(
            codec.CreateTopicsRequest(
                topics=[
                    codec.CreatableTopic(
                        name=topic_name,
                        num_partitions=1,
                        replication_factor=1,
                        configs=[codec.CreatableTopicConfig(name="max.message.bytes", value="200")],
                    )
                ]
            ),
            4,
        )
        assert created.topics[0].error_code == 0
        assert produce_error(wire, produce(topic_name, batch(b"small"))) == 0
        big = batch(b"x" * 500)
        assert produce_error(wire, produce(topic_name, big)) == codec.ErrorCode.MESSAGE_TOO_LARGE
        assert latest(wire, topic_name) == (0, 1)


@pytest.mark.parametrize("name", ["bad name", "a/b", "x" * 250, "", ".", "__internal", "t:1"])
def test_invalid_topic_names(node: ServerProcess, name: str) -> None:
    with Wire(node.kafka) as wire:
        assert produce_error(wire, produce(name, batch(b"x"))) in (
            codec.ErrorCode.INVALID_TOPIC_EXCEPTION,
        )
        meta = wire.call(codec.MetadataRequest(topics=[codec.MetadataRequestTopic(name=name)]), 8)
        assert meta.topics[0].error_code == codec.ErrorCode.INVALID_TOPIC_EXCEPTION
        created = wire.call(
            codec.CreateTopicsRequest(
                topics=[codec.CreatableTopic(name=name, num_partitions=1, replication_factor=1)]
            ),
            4,
        )
        assert created.topics[0].error_code == codec.ErrorCode.INVALID_TOPIC_EXCEPTION


def test_absurd_numbers_get_error_codes(node: ServerProcess, topic_name: str) -> None:
    with Wire(node.kafka) as wire:
        assert produce_error(wire, produce(topic_name, batch(b"a", b"b"))) == 0
        assert produce_error(wire, produce(topic_name, batch(b"x"), acks=7)) == (
            codec.ErrorCode.INVALID_REQUIRED_ACKS
        )
        assert produce_error(wire, produce(topic_name, batch(b"x"), partition=-1)) == (
            codec.ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        assert produce_error(wire, produce(topic_name, batch(b"x"), partition=5)) == (
            codec.ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        for offset in (-5, 3, 2**62):
            fetched = wire.call(
                codec.FetchRequest(
                    max_wait_ms=-1,
                    min_bytes=-1,
                    max_bytes=-10,
                    topics=[
                        codec.FetchTopic(
                            topic=topic_name,
                            partitions=[
                                codec.FetchPartition(
                                    partition=0, fetch_offset=offset, partition_max_bytes=-1
                                )
                            ],
                        )
                    ],
                ),
                11,
            )
            part = fetched.responses[0].partitions[0]
            assert part.error_code == codec.ErrorCode.OFFSET_OUT_OF_RANGE
            assert part.high_watermark == 2
        deleted = wire.call(
            codec.DeleteRecordsRequest(
                topics=[
                    codec.DeleteRecordsTopic(
                        name=topic_name,
                        partitions=[codec.DeleteRecordsPartition(partition_index=0, offset=99)],
                    )
                ]
            ),
            1,
        )
        assert deleted.topics[0].partitions[0].error_code == codec.ErrorCode.OFFSET_OUT_OF_RANGE
        assert latest(wire, topic_name) == (0, 2)


def test_acks_zero_is_answered_with_nothing_and_pipelines_stay_in_order(
    node: ServerProcess, topic_name: str
) -> None:
    with Wire(node.kafka) as wire:
        first = wire.send(produce(topic_name, batch(b"fire"), acks=0), 8)
        second = wire.send(codec.ApiVersionsRequest(), 0)
        third = wire.send(produce(topic_name, batch(b"and"), acks=1), 8)
        fourth = wire.send(
            codec.MetadataRequest(topics=[codec.MetadataRequestTopic(name=topic_name)]), 8
        )
        got = []
        for api_key, version in ((18, 0), (0, 8), (3, 8)):
            frame = wire.read_frame()
            assert frame is not None
            got.append(codec.decode_response(api_key, version, frame)[0])
        assert got == [second, third, fourth]
        assert first not in got
        assert latest(wire, topic_name) == (0, 2)


def test_slow_loris_and_idle_connections_are_closed(node: ServerProcess) -> None:
    with Wire(node.kafka) as wire:
        wire.sock.sendall(struct.pack(">i", 100) + b"\x00\x12")  # a frame that never completes
        started = time.monotonic()
        assert wire.closed_by_server()
        assert time.monotonic() - started < FRAME_TIMEOUT + 5
    with Wire(node.kafka, timeout=IDLE_TIMEOUT + 10) as wire:
        wire.call(codec.ApiVersionsRequest(), 0)
        started = time.monotonic()
        assert wire.closed_by_server()
        assert IDLE_TIMEOUT - 0.5 < time.monotonic() - started < IDLE_TIMEOUT + 5
    still_serves(node)


def test_a_client_that_never_reads_does_not_hold_the_node(
    node: ServerProcess, topic_name: str
) -> None:
    with Wire(node.kafka) as reader:
        assert produce_error(reader, produce(topic_name, batch(b"y" * 30_000))) == 0
    hog = socket.create_connection(tuple(node.kafka.rsplit(":", 1)), timeout=5)  # type: ignore[arg-type]
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        fetch = codec.FetchRequest(
            max_wait_ms=0,
            topics=[
                codec.FetchTopic(
                    topic=topic_name,
                    partitions=[codec.FetchPartition(partition=0, partition_max_bytes=1 << 20)],
                )
            ],
        )
        frame = codec.encode_request(codec.RequestHeader(1, 11, 1, "hog"), fetch)
        try:
            for _ in range(200):  # pipelined, answers never read
                hog.sendall(frame)
        except OSError:
            pass  # the server stopped reading from us: what we want
        still_serves(node)
        with Wire(node.kafka) as wire:
            assert latest(wire, topic_name) == (0, 1)
    finally:
        hog.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(min_size=8, max_size=300),
        st.tuples(
            st.sampled_from(
                [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 32, 37]
            ),
            st.integers(0, 12),
            st.binary(max_size=200),
        ).map(lambda t: struct.pack(">hhih", t[0], t[1], 1, -1) + t[2]),
    )
)
def test_garbage_never_crashes_the_node(node: ServerProcess, payload: bytes) -> None:
    with Wire(node.kafka, timeout=5) as wire:
        wire.sock.sendall(struct.pack(">i", len(payload)) + payload)
        wire.sock.shutdown(socket.SHUT_WR)
        while wire.read_frame() is not None:  # an answer or a close, never a hang
            pass
    assert node.process.poll() is None


def test_after_the_garbage_the_node_still_works(node: ServerProcess, topic_name: str) -> None:
    still_serves(node)
    with Wire(node.kafka) as wire:
        assert produce_error(wire, produce(topic_name, batch(b"fine"))) == 0
        assert latest(wire, topic_name) == (0, 1)
    log = "".join(node.output)
    assert "Traceback" not in log, log
