"""Request routing and headers, with frames written out byte by byte (what a client sends)."""

from __future__ import annotations

import struct
import uuid

import pytest

from millstream.server.kafka import codec


def i16(n: int) -> bytes:
    return struct.pack(">h", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def string(s: str) -> bytes:
    return i16(len(s)) + s.encode()


def compact(s: str) -> bytes:
    return bytes([len(s) + 1]) + s.encode()


def test_metadata_v1_request_header_v1() -> None:
    frame = (
        i16(3)  # api key: Metadata
        + i16(1)  # api version
        + i32(42)  # correlation id
        + string("cli")  # client id
        + i32(2)  # topics: 2
        + string("a")
        + string("bc")
    )
    request = codec.decode_request(frame)
    assert request.header == codec.RequestHeader(3, 1, 42, "cli")
    assert request.body == codec.MetadataRequest(
        topics=[codec.MetadataRequestTopic(name="a"), codec.MetadataRequestTopic(name="bc")]
    )


def test_metadata_v12_request_header_v2_with_tags_and_a_null_client_id() -> None:
    frame = (
        i16(3)
        + i16(12)
        + i32(-7)
        + i16(-1)  # client id: null (always an int16 length, even in header v2)
        + b"\x01\x05\x02hi"  # header tagged fields: one unknown tag 5 of 2 bytes, skipped
        + b"\x02"  # topics: compact count 1
        + uuid.UUID(int=9).bytes  # topic id
        + compact("t")  # name
        + b"\x00"  # topic's tagged fields
        + b"\x00"  # allow auto topic creation: false
        + b"\x01"  # include topic authorized operations: true
        + b"\x00"  # request's tagged fields
    )
    request = codec.decode_request(frame)
    assert request.header == codec.RequestHeader(3, 12, -7, None)
    assert request.body == codec.MetadataRequest(
        topics=[codec.MetadataRequestTopic(topic_id=uuid.UUID(int=9), name="t")],
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=True,
    )


def test_metadata_v12_null_topics_means_all_topics() -> None:
    frame = i16(3) + i16(12) + i32(1) + string("c") + b"\x00" + b"\x00" + b"\x01\x00\x00"
    assert codec.decode_request(frame).body.topics is None  # type: ignore[union-attr]


def test_produce_v3_records_stay_the_bytes_sent() -> None:
    batch = bytes(range(70))
    frame = (
        i16(0)
        + i16(3)
        + i32(1)
        + string("p")
        + i16(-1)  # transactional id: null
        + i16(-1)  # acks: all
        + i32(1500)  # timeout
        + i32(1)  # topics
        + string("t")
        + i32(1)  # partitions
        + i32(4)  # index
        + i32(len(batch))
        + batch
    )
    request = codec.decode_request(frame)
    produce = request.body
    assert isinstance(produce, codec.ProduceRequest)
    assert produce.acks == -1
    records = produce.topic_data[0].partition_data[0].records
    assert records == batch
    assert isinstance(records, memoryview)
    assert records.obj is frame  # a view of the frame: record data is never copied
    assert codec.expects_response(request)


def test_produce_with_acks_zero_expects_no_response() -> None:
    body = codec.ProduceRequest(acks=0, topic_data=[])
    frame = codec.encode_request(codec.RequestHeader(0, 7, 1, "p"), body)
    assert not codec.expects_response(codec.decode_request(frame[4:]))


def test_response_header_is_flexible_from_the_apis_flexible_version() -> None:
    for version, tagged in [(8, b""), (9, b"\x00")]:
        header = codec.RequestHeader(3, version, 0x01020304)
        frame = b"".join(codec.encode_response(header, codec.MetadataResponse()))
        assert frame[4:8] == b"\x01\x02\x03\x04"
        assert frame[8 : 8 + len(tagged)] == tagged
        assert len(frame) - 4 == struct.unpack(">i", frame[:4])[0]


def test_api_versions_v3_response_header_is_never_flexible() -> None:
    header = codec.RequestHeader(18, 3, 5)
    frame = b"".join(codec.encode_response(header, codec.ApiVersionsResponse()))
    assert frame == (
        i32(4 + 2 + 1 + 4 + 1)  # size
        + i32(5)  # correlation id, and no tagged-fields byte after it
        + i16(0)  # error code
        + b"\x01"  # api keys: compact, empty
        + i32(0)  # throttle time
        + b"\x00"  # tagged fields
    )


def test_api_versions_too_new_is_answered_with_error_35_and_a_v0_body() -> None:
    frame = i16(18) + i16(9) + i32(77) + string("future") + b"\x00" + b"whatever v9 holds"
    with pytest.raises(codec.UnsupportedVersion) as caught:
        codec.decode_request(frame)
    error = caught.value
    assert not error.close_connection
    assert error.header == codec.RequestHeader(18, 9, 77)

    answer = codec.api_versions_response(codec.ErrorCode.UNSUPPORTED_VERSION)
    got = b"".join(codec.encode_response(error.header, answer))
    table = sorted(codec.SUPPORTED_VERSIONS.items())
    expected_body = (
        i32(77)  # correlation id; header v0
        + i16(35)  # error code: UNSUPPORTED_VERSION
        + i32(len(table))  # api keys: int32 count (v0 is not flexible)
        + b"".join(i16(key) + i16(low) + i16(high) for key, (low, high) in table)
    )
    assert got == i32(len(expected_body)) + expected_body


def test_the_normal_api_versions_answer_lists_the_supported_table() -> None:
    response = codec.api_versions_response()
    assert response.error_code == 0
    listed = {(v.api_key, v.min_version, v.max_version) for v in response.api_keys}
    assert listed == {(k, lo, hi) for k, (lo, hi) in codec.SUPPORTED_VERSIONS.items()}
    assert codec.SUPPORTED_VERSIONS[codec.ApiKey.FETCH][1] == 12  # no topic-id fetches
    # librdkafka < 2.11.1 compresses with gzip, snappy or lz4 only if Produce v0 is listed
    assert codec.SUPPORTED_VERSIONS[codec.ApiKey.PRODUCE][0] == 0
    assert codec.SUPPORTED_VERSIONS[codec.ApiKey.FETCH][0] == 4  # magic-2 batches only


@pytest.mark.parametrize(("key", "version"), [(1, 3), (0, 11), (1, 13), (3, -1)])
def test_versions_outside_the_table_are_refused_before_the_body(key: int, version: int) -> None:
    frame = i16(key) + i16(version) + i32(3) + b"\xff\xff\xff\xff garbage"
    with pytest.raises(codec.UnsupportedVersion) as caught:
        codec.decode_request(frame)
    assert caught.value.close_connection
    assert caught.value.header == codec.RequestHeader(key, version, 3)


@pytest.mark.parametrize("key", [4, 7, 23, 68, 1000, -1])
def test_unknown_api_keys_are_refused(key: int) -> None:
    with pytest.raises(codec.UnsupportedApiKey) as caught:
        codec.decode_request(i16(key) + i16(0) + i32(9) + string("c"))
    assert caught.value.close_connection
    assert caught.value.header is not None
    assert caught.value.header.correlation_id == 9


def test_a_response_for_another_api_is_an_encode_error() -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode_response(codec.RequestHeader(3, 1, 1), codec.ProduceResponse())


def test_a_response_at_a_version_we_do_not_speak_is_an_encode_error() -> None:
    with pytest.raises(codec.EncodeError, match="outside 0-10"):
        codec.encode_response(codec.RequestHeader(0, 11, 1), codec.ProduceResponse())


@pytest.mark.parametrize(
    "bad",
    [
        codec.ProduceResponse(throttle_time_ms=2**31),  # out of int32
        codec.ProduceResponse(responses=[codec.TopicProduceResponse(name=None)]),  # type: ignore[arg-type]
        codec.ProduceResponse(responses=None),  # type: ignore[arg-type]
    ],
)
def test_values_that_do_not_fit_the_wire_are_encode_errors(bad: codec.ProduceResponse) -> None:
    with pytest.raises(codec.EncodeError) as caught:
        codec.encode_response(codec.RequestHeader(0, 8, 1), bad)
    assert not isinstance(caught.value, codec.DecodeError)


def test_fetch_records_of_several_batches_are_written_without_joining() -> None:
    big = [bytes([i]) * 9000 for i in range(3)]
    partition = codec.PartitionData(partition_index=0, high_watermark=3, records=big)
    response = codec.FetchResponse(
        responses=[codec.FetchableTopicResponse(topic="t", partitions=[partition])]
    )
    chunks = codec.encode_response(codec.RequestHeader(1, 11, 1), response)
    assert any(chunk is batch for chunk in chunks for batch in big)  # handed over, not copied
    frame = b"".join(chunks)
    assert struct.unpack(">i", frame[:4])[0] == len(frame) - 4
    _, decoded = codec.decode_response(1, 11, frame[4:])
    assert isinstance(decoded, codec.FetchResponse)
    assert decoded.responses[0].partitions[0].records == b"".join(big)


def test_error_codes_carry_kafkas_retriable_flag() -> None:
    assert codec.ErrorCode.NOT_COORDINATOR.retriable
    assert codec.ErrorCode.UNKNOWN_TOPIC_OR_PARTITION.retriable
    assert not codec.ErrorCode.TOPIC_ALREADY_EXISTS.retriable
    assert codec.ErrorCode.UNSUPPORTED_VERSION == 35
    response = codec.HeartbeatResponse(error_code=codec.ErrorCode.REBALANCE_IN_PROGRESS)
    frame = b"".join(codec.encode_response(codec.RequestHeader(12, 0, 1), response))
    assert frame[-2:] == i16(27)
