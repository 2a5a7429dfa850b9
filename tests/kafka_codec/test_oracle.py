"""Every API and version the codec advertises, both ways, against kafka-python's encoders.

Requests: kafka-python encodes (header included) what a client would send; ``decode_request``
must give back the same values. Responses: ``encode_response`` writes; kafka-python must read
the same values, and the response header it expects. Each case also round-trips through our
own client half (``encode_request``/``decode_response``).
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from millstream.server.kafka import codec

from .oracle import from_kafka_python, kafka_python_classes, normalized, to_kafka_python, values

CASES = [
    (key, version)
    for key, (low, high) in sorted(codec.SUPPORTED_VERSIONS.items())
    for version in range(low, high + 1)
]
IDS = [f"{codec.MESSAGES[key][0].__name__.removesuffix('Request')}-v{v}" for key, v in CASES]

ORACLE = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
client_ids = st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@pytest.mark.parametrize(("key", "version"), CASES, ids=IDS)
@ORACLE
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1), client_id=client_ids)
def test_request_encoded_by_kafka_python_decodes_to_the_same_value(
    key: codec.ApiKey, version: int, data: st.DataObject, correlation_id: int, client_id: str | None
) -> None:
    request_cls = codec.MESSAGES[key][0]
    value = data.draw(values(request_cls, version))
    theirs = to_kafka_python(value, kafka_python_classes()[request_cls.__name__], version)
    theirs.with_header(correlation_id=correlation_id, client_id=client_id)
    frame = bytes(theirs.encode(header=True, framed=True))

    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    decoded = codec.decode_request(frame[4:])

    assert decoded.header == codec.RequestHeader(key, version, correlation_id, client_id)
    assert normalized(decoded.body) == normalized(value)
    # our client half writes the same bytes kafka-python does, up to tagged-field choices
    ours = codec.encode_request(decoded.header, decoded.body)
    assert normalized(codec.decode_request(ours[4:]).body) == normalized(value)


@pytest.mark.parametrize(("key", "version"), CASES, ids=IDS)
@ORACLE
@given(data=st.data(), correlation_id=st.integers(-(2**31), 2**31 - 1))
def test_response_encoded_by_us_decodes_in_kafka_python_to_the_same_value(
    key: codec.ApiKey, version: int, data: st.DataObject, correlation_id: int
) -> None:
    response_cls = codec.MESSAGES[key][1]
    value = data.draw(values(response_cls, version, chunks=True))
    header = codec.RequestHeader(key, version, correlation_id, "client")
    chunks = codec.encode_response(header, value)
    assert all(isinstance(chunk, bytes | memoryview) for chunk in chunks)
    frame = b"".join(chunks)

    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    theirs: Any = kafka_python_classes()[response_cls.__name__].decode(
        frame[4:], version=version, header=True
    )
    assert theirs.header.correlation_id == correlation_id
    if isinstance(value, codec.ApiVersionsResponse) and value.error_code:
        # an ApiVersions error is always a v0 body, which has only these two fields
        value = codec.ApiVersionsResponse(error_code=value.error_code, api_keys=value.api_keys)
        version = 0
    assert normalized(from_kafka_python(theirs, response_cls, version)) == normalized(value)

    correlation, ours = codec.decode_response(key, header.api_version, frame[4:])
    assert correlation == correlation_id
    assert normalized(ours) == normalized(value)
