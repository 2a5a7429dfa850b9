"""Hostile and broken frames: every failure is one typed codec error, found before allocating.

The invariant (h11's fuzzing habit): whatever the bytes, ``decode_request`` returns a request
or raises ``KafkaCodecError``; never ``IndexError``, ``struct.error``, ``UnicodeDecodeError``
or ``MemoryError``, and never a slow loop over a count the bytes cannot hold.
"""

from __future__ import annotations

import struct
import tracemalloc
import warnings

import kafka.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.memory_records import MemoryRecordsBuilder

from millstream.server.kafka import codec

from .oracle import kafka_python_classes, to_kafka_python, values

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def i16(n: int) -> bytes:
    return struct.pack(">h", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def header(key: int, version: int, flexible: bool = False) -> bytes:
    return i16(key) + i16(version) + i32(1) + i16(1) + b"c" + (b"\x00" if flexible else b"")


def decode_or_codec_error(frame: bytes) -> codec.KafkaCodecError | None:
    """The codec error ``frame`` raises, or None if it decodes; anything else fails the test."""
    try:
        codec.decode_request(frame)
    except codec.KafkaCodecError as exc:
        return exc
    return None


def sample_frames() -> list[bytes]:
    """One frame kafka-python would send per API, at its lowest and highest version."""
    frames = []
    for key, (low, high) in sorted(codec.SUPPORTED_VERSIONS.items()):
        request_cls = codec.MESSAGES[key][0]
        for version in {low, high}:
            value = values(request_cls, version).example()
            theirs = to_kafka_python(value, kafka_python_classes()[request_cls.__name__], version)
            theirs.with_header(correlation_id=5, client_id="sample")
            frames.append(bytes(theirs.encode(header=True)))
    return frames


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    with warnings.catch_warnings():  # hypothesis warns when .example() is used outside tests
        warnings.simplefilter("ignore")
        return sample_frames()


def test_every_truncation_of_a_valid_frame_is_a_decode_error(frames: list[bytes]) -> None:
    for frame in frames:
        codec.decode_request(frame)
        for end in range(len(frame)):
            with pytest.raises(codec.DecodeError):
                codec.decode_request(frame[:end])


@pytest.mark.parametrize("version", [0, 1, 2])
@pytest.mark.parametrize("magic", [0, 1, 2])
def test_old_produce_versions_truncated_anywhere_are_decode_errors(
    version: int, magic: int
) -> None:
    """Produce v0-2 (listed for old librdkafka's sake) with the message sets old clients write:
    the codec passes records through whatever their magic and refuses every truncation."""
    builder = MemoryRecordsBuilder(magic=magic, compression_type=1, batch_size=1 << 16)
    builder.append(1_700_000_000_000, b"k", b"v" * 40)
    builder.close()
    records = bytes(builder.buffer())
    ours = codec.ProduceRequest(
        acks=1,
        timeout_ms=100,
        topic_data=[
            codec.TopicProduceData(
                name="t", partition_data=[codec.PartitionProduceData(index=0, records=records)]
            )
        ],
    )
    request = to_kafka_python(ours, kafka_python_classes()["ProduceRequest"], version)
    request.with_header(correlation_id=5, client_id="old")
    frame = bytes(request.encode(header=True))
    (partition,) = codec.decode_request(frame).body.topic_data[0].partition_data
    assert bytes(partition.records) == records
    for end in range(len(frame)):
        with pytest.raises(codec.DecodeError):
            codec.decode_request(frame[:end])


def test_bytes_after_a_valid_body_are_ignored(frames: list[bytes]) -> None:
    """As Kafka's broker does: librdkafka sends some (tests/kafka_door/test_matrix.py)."""
    for frame in frames:
        assert codec.decode_request(frame + b"\x01\x00\x00") == codec.decode_request(frame)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        # Produce v8: 2^31-1 topics in a 20-byte frame
        (header(0, 8) + i16(-1) + i16(1) + i32(100) + i32(2**31 - 1) + b"\x00" * 8, "count"),
        # Produce v9 (compact): a count of 2^32-2 as a 5-byte varint
        (header(0, 9, True) + b"\x00" + i16(1) + i32(100) + b"\xff\xff\xff\xff\x0f", "count"),
        # Metadata v1: a topic name claiming 32767 bytes
        (header(3, 1) + i32(1) + i16(32767) + b"abc", "past the end"),
        # Metadata v1: string length -2
        (header(3, 1) + i32(1) + i16(-2), "negative"),
        # Metadata v0: a null topic name where v0 has no nulls
        (header(3, 0) + i32(1) + i16(-1), "null"),
        # Produce v3: records claiming 1 GiB
        (
            header(0, 3)
            + i16(-1)
            + i16(1)
            + i32(1)
            + i32(1)
            + i16(1)
            + b"t"
            + i32(1)
            + i32(0)
            + i32(2**30),
            "past the end",
        ),
        # Produce v3: an array count of -5
        (header(0, 3) + i16(-1) + i16(1) + i32(1) + i32(-5), "negative"),
        # Metadata v9: a varint that never ends
        (header(3, 9, True) + b"\xff" * 8, "varint"),
        # Metadata v9: a header tag claiming more bytes than there are
        (i16(3) + i16(9) + i32(1) + i16(-1) + b"\x01\x00\x7f" + b"\x00", "tagged field"),
        # Metadata v1: a topic name that is not UTF-8
        (header(3, 1) + i32(1) + i16(2) + b"\xff\xfe", "malformed"),
        # a client id running past the end
        (i16(3) + i16(1) + i32(1) + i16(50) + b"abc", "client id"),
        # shorter than a header
        (i16(3) + i16(1) + b"\x00", "shorter"),
    ],
)
def test_broken_lengths_and_counts(frame: bytes, message: str) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode_request(frame)  # the first call compiles the decoder: not measured
    # tracemalloc counts every thread's allocations (a test before may leave one running), so
    # take the least of three peaks: an allocation sized from the claim shows up every time.
    peaks = []
    for _ in range(3):
        tracemalloc.start()
        try:
            with pytest.raises(codec.DecodeError, match=message):
                codec.decode_request(frame)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert min(peaks) < 16 * 1024  # nothing allocated from the claimed sizes


@FUZZ
@given(st.binary(max_size=120))
def test_garbage_only_ever_raises_the_codec_error(data: bytes) -> None:
    error = decode_or_codec_error(data)
    if error is not None:
        assert error.close_connection or isinstance(error, codec.UnsupportedVersion)


@FUZZ
@given(
    key_version=st.sampled_from(
        [(k, v) for k, (lo, hi) in codec.SUPPORTED_VERSIONS.items() for v in range(lo, hi + 1)]
    ),
    body=st.binary(max_size=120),
)
def test_valid_headers_with_random_bodies_only_raise_decode_errors(
    key_version: tuple[int, int], body: bytes
) -> None:
    key, version = key_version
    flexible_from = codec.MESSAGES[codec.ApiKey(key)][0].FLEXIBLE_FROM
    flexible = flexible_from is not None and version >= flexible_from
    error = decode_or_codec_error(header(key, version, flexible) + body)
    if error is not None:
        assert type(error) is codec.DecodeError
        assert error.close_connection
        assert error.header is not None
        assert (error.header.api_key, error.header.api_version) == (key, version)


@FUZZ
@given(data=st.data())
def test_valid_frames_with_flipped_bytes_decode_or_raise_the_codec_error(
    frames: list[bytes], data: st.DataObject
) -> None:
    frame = bytearray(data.draw(st.sampled_from(frames)))
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    decode_or_codec_error(bytes(frame))


def test_error_codes_agree_with_kafka_python() -> None:
    # kafka-python marks CORRUPT_MESSAGE not retriable; Kafka's CorruptRecordException is a
    # RetriableException, and that is what we follow.
    for code in codec.ErrorCode:
        theirs = kafka.errors.for_code(code.value)
        assert theirs is not kafka.errors.UnknownError or code == -1, code
        if code != codec.ErrorCode.CORRUPT_MESSAGE:
            assert theirs.retriable == code.retriable, code
    assert codec.ErrorCode.CORRUPT_MESSAGE.retriable
