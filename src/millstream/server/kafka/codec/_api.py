"""Whole frames to typed messages and back: request routing, headers, ApiVersions rules.

``decode_request`` reads the request header's first eight bytes (api key, api version,
correlation id) and checks them against ``SUPPORTED_VERSIONS`` before touching the body, so a
version this codec cannot decode still gets an answer where Kafka requires one (ApiVersions).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ._compile import Encoder, decoder, encoder, skip_tags
from ._error_codes import ErrorCode
from ._errors import DecodeError, EncodeError, UnsupportedApiKey, UnsupportedVersion
from ._headers import RequestHeader
from ._msg_admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from ._msg_cluster import (
    ApiVersion,
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from ._msg_fetch import (
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from ._msg_groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from ._msg_produce import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)
from ._msg_sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from ._versions import SUPPORTED_VERSIONS, ApiKey

__all__ = [
    "MESSAGES",
    "Request",
    "RequestBody",
    "ResponseBody",
    "api_versions_response",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "expects_response",
]

RequestBody = (
    ProduceRequest
    | FetchRequest
    | ListOffsetsRequest
    | MetadataRequest
    | OffsetCommitRequest
    | OffsetFetchRequest
    | FindCoordinatorRequest
    | JoinGroupRequest
    | HeartbeatRequest
    | LeaveGroupRequest
    | SyncGroupRequest
    | DescribeGroupsRequest
    | ListGroupsRequest
    | SaslHandshakeRequest
    | ApiVersionsRequest
    | CreateTopicsRequest
    | DeleteTopicsRequest
    | DeleteRecordsRequest
    | InitProducerIdRequest
    | DescribeConfigsRequest
    | SaslAuthenticateRequest
    | CreatePartitionsRequest
)
ResponseBody = (
    ProduceResponse
    | FetchResponse
    | ListOffsetsResponse
    | MetadataResponse
    | OffsetCommitResponse
    | OffsetFetchResponse
    | FindCoordinatorResponse
    | JoinGroupResponse
    | HeartbeatResponse
    | LeaveGroupResponse
    | SyncGroupResponse
    | DescribeGroupsResponse
    | ListGroupsResponse
    | SaslHandshakeResponse
    | ApiVersionsResponse
    | CreateTopicsResponse
    | DeleteTopicsResponse
    | DeleteRecordsResponse
    | InitProducerIdResponse
    | DescribeConfigsResponse
    | SaslAuthenticateResponse
    | CreatePartitionsResponse
)

# api key → (request class, response class)
MESSAGES: Final[dict[ApiKey, tuple[type[RequestBody], type[ResponseBody]]]] = {
    ApiKey.PRODUCE: (ProduceRequest, ProduceResponse),
    ApiKey.FETCH: (FetchRequest, FetchResponse),
    ApiKey.LIST_OFFSETS: (ListOffsetsRequest, ListOffsetsResponse),
    ApiKey.METADATA: (MetadataRequest, MetadataResponse),
    ApiKey.OFFSET_COMMIT: (OffsetCommitRequest, OffsetCommitResponse),
    ApiKey.OFFSET_FETCH: (OffsetFetchRequest, OffsetFetchResponse),
    ApiKey.FIND_COORDINATOR: (FindCoordinatorRequest, FindCoordinatorResponse),
    ApiKey.JOIN_GROUP: (JoinGroupRequest, JoinGroupResponse),
    ApiKey.HEARTBEAT: (HeartbeatRequest, HeartbeatResponse),
    ApiKey.LEAVE_GROUP: (LeaveGroupRequest, LeaveGroupResponse),
    ApiKey.SYNC_GROUP: (SyncGroupRequest, SyncGroupResponse),
    ApiKey.DESCRIBE_GROUPS: (DescribeGroupsRequest, DescribeGroupsResponse),
    ApiKey.LIST_GROUPS: (ListGroupsRequest, ListGroupsResponse),
    ApiKey.SASL_HANDSHAKE: (SaslHandshakeRequest, SaslHandshakeResponse),
    ApiKey.API_VERSIONS: (ApiVersionsRequest, ApiVersionsResponse),
    ApiKey.CREATE_TOPICS: (CreateTopicsRequest, CreateTopicsResponse),
    ApiKey.DELETE_TOPICS: (DeleteTopicsRequest, DeleteTopicsResponse),
    ApiKey.DELETE_RECORDS: (DeleteRecordsRequest, DeleteRecordsResponse),
    ApiKey.INIT_PRODUCER_ID: (InitProducerIdRequest, InitProducerIdResponse),
    ApiKey.DESCRIBE_CONFIGS: (DescribeConfigsRequest, DescribeConfigsResponse),
    ApiKey.SASL_AUTHENTICATE: (SaslAuthenticateRequest, SaslAuthenticateResponse),
    ApiKey.CREATE_PARTITIONS: (CreatePartitionsRequest, CreatePartitionsResponse),
}

_HEAD = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")
_HEAD_REQUEST = struct.Struct(">ihhi")  # size (patched last), api key, version, correlation id
_HEAD_RESPONSE = struct.Struct(">ii")  # size (patched last), correlation id
_I16 = struct.Struct(">h")

# api key (int) → (lowest, highest, request class, first flexible version or None)
_ROUTES: Final = {
    int(key): (low, high, MESSAGES[key][0], MESSAGES[key][0].FLEXIBLE_FROM)
    for key, (low, high) in SUPPORTED_VERSIONS.items()
}
# everything a decode can raise on bad bytes besides DecodeError itself
_MALFORMED = (struct.error, IndexError, ValueError, OverflowError, TypeError)


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded request: its header (keep it to answer) and its typed body."""

    header: RequestHeader
    body: RequestBody


_new = object.__new__
_set_key = RequestHeader.__dict__["api_key"].__set__
_set_version = RequestHeader.__dict__["api_version"].__set__
_set_correlation = RequestHeader.__dict__["correlation_id"].__set__
_set_client = RequestHeader.__dict__["client_id"].__set__
_set_header = Request.__dict__["header"].__set__
_set_body = Request.__dict__["body"].__set__


def _request(
    api_key: int, api_version: int, correlation_id: int, client_id: str | None, body: RequestBody
) -> Request:
    """``Request(RequestHeader(...), body)`` through the slots: the frozen dataclasses'
    ``__init__`` costs about three times as much, on every request (measured)."""
    header = _new(RequestHeader)
    _set_key(header, api_key)
    _set_version(header, api_version)
    _set_correlation(header, correlation_id)
    _set_client(header, client_id)
    request = _new(Request)
    _set_header(request, header)
    _set_body(request, body)
    return request


def decode_request(frame: bytes) -> Request:
    """Decode one frame (without its size prefix) from ``FrameBuffer.feed``.

    Raises ``UnsupportedApiKey`` / ``UnsupportedVersion`` (both carry ``header``) before
    reading the body, and ``DecodeError`` for anything malformed; bytes after a whole body
    are ignored.
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    if len(frame) < 8:
        raise DecodeError(f"request of {len(frame)} bytes is shorter than a request header")
    api_key, api_version, correlation_id = _HEAD.unpack_from(frame, 0)
    route = _ROUTES.get(api_key)
    if route is None:
        raise UnsupportedApiKey(
            f"unknown API key {api_key}",
            header=RequestHeader(api_key, api_version, correlation_id),
        )
    low, high, cls, flexible_from = route
    if not low <= api_version <= high:
        raise UnsupportedVersion(
            f"API key {api_key} version {api_version} is outside {low}-{high}",
            header=RequestHeader(api_key, api_version, correlation_id),
        )
    client_id: str | None = None
    try:
        # client id: nullable int16-length string, in both header v1 and v2 (never compact)
        (n,) = _I16.unpack_from(frame, 8)
        pos = 10
        if n >= 0:
            if pos + n > len(frame):
                raise DecodeError("truncated client id")
            client_id = frame[pos : pos + n].decode()
            pos += n
        elif n != -1:
            raise DecodeError(f"negative client id length {n}")
        if flexible_from is not None and api_version >= flexible_from:
            pos = skip_tags(frame, pos)
        body, pos = decoder(cls, api_version)(frame, pos)
    except _MALFORMED as exc:
        header = RequestHeader(api_key, api_version, correlation_id, client_id)
        if isinstance(exc, DecodeError):
            exc.header = exc.header or header
            raise
        raise DecodeError(f"malformed {cls.__name__} v{api_version}: {exc}", header=header) from exc
    # Bytes after the body are ignored, as Kafka's broker ignores them: librdkafka 2.16 sends
    # three after a Metadata v13 body asking for all topics (AdminClient.list_topics).
    return _request(api_key, api_version, correlation_id, client_id, body)


def encode_response(header: RequestHeader, body: ResponseBody) -> list[bytes | memoryview]:
    """The whole response frame (size prefix, response header, body) as chunks for
    ``transport.writelines``; large record data is passed through uncopied.

    The body is encoded at ``header.api_version``, except an ApiVersions response with an
    error (such as the answer to a version outside ``SUPPORTED_VERSIONS``), which is encoded as
    v0: clients parse it that way whatever they asked for (KIP-511). Fields that
    do not exist in that version are left out; the response header is flexible (v1) when the
    version is, except for ApiVersions (always v0).
    """
    key = header.api_key
    version = header.api_version
    if key != body.API_KEY:
        raise EncodeError(f"{type(body).__name__} does not answer API key {key}")
    if key == ApiKey.API_VERSIONS:
        low, high = SUPPORTED_VERSIONS[ApiKey.API_VERSIONS]
        if not low <= version <= high or (
            isinstance(body, ApiVersionsResponse) and body.error_code
        ):
            version = 0  # clients read any ApiVersions error as a v0 body (KIP-511)
        flexible_header = False
    else:
        low, high, _, flexible_from = _ROUTES[key]
        if not low <= version <= high:
            raise EncodeError(f"API key {key} version {version} is outside {low}-{high}")
        flexible_header = flexible_from is not None and version >= flexible_from
    out = bytearray(_HEAD_RESPONSE.pack(0, header.correlation_id))
    if flexible_header:
        out.append(0)  # no tagged fields in the response header
    return _frame(out, encoder(type(body), version), body)


def encode_request(header: RequestHeader, body: RequestBody) -> bytes:
    """A whole request frame, as a client would send it (tests and tools)."""
    if header.api_key != body.API_KEY:
        raise EncodeError(f"{type(body).__name__} is not API key {header.api_key}")
    out = bytearray(
        _HEAD_REQUEST.pack(0, header.api_key, header.api_version, header.correlation_id)
    )
    if header.client_id is None:
        out += b"\xff\xff"
    else:
        client_id = header.client_id.encode()
        out += _I16.pack(len(client_id))
        out += client_id
    flexible_from = body.FLEXIBLE_FROM
    if flexible_from is not None and header.api_version >= flexible_from:
        out.append(0)
    return b"".join(_frame(out, encoder(type(body), header.api_version), body))


def decode_response(api_key: int, api_version: int, frame: bytes) -> tuple[int, ResponseBody]:
    """(correlation id, body) of a response frame (without its size prefix), as a client
    reads it: ApiVersions responses have the v0 header."""
    try:
        cls = MESSAGES[ApiKey(api_key)][1]
    except ValueError:
        raise UnsupportedApiKey(f"unknown API key {api_key}") from None
    if type(frame) is not bytes:
        frame = bytes(frame)
    flexible_from = cls.FLEXIBLE_FROM
    flexible = flexible_from is not None and api_version >= flexible_from
    try:
        (correlation_id,) = _CORRELATION.unpack_from(frame, 0)
        pos = 4
        if api_key == ApiKey.API_VERSIONS:
            if _I16.unpack_from(frame, pos)[0]:
                api_version = 0  # an error comes with a v0 body, as encode_response writes it
        elif flexible:
            pos = skip_tags(frame, pos)
        body, pos = decoder(cls, api_version)(frame, pos)
    except _MALFORMED as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"malformed {cls.__name__} v{api_version}: {exc}") from exc
    if pos != len(frame):
        raise DecodeError(f"{len(frame) - pos} bytes after the end of {cls.__name__}")
    return correlation_id, body


def _frame(out: bytearray, encode: Encoder, body: object) -> list[bytes | memoryview]:
    """Encode ``body`` after the header in ``out`` (which starts with 4 bytes for the size)."""
    chunks: list[bytes | memoryview] = []
    try:
        encode(body, out, chunks)
    except (struct.error, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode {type(body).__name__}: {exc}") from exc
    if not chunks:
        _SIZE.pack_into(out, 0, len(out) - 4)
        return [bytes(out)]
    chunks.append(bytes(out))
    chunks[0] = _SIZE.pack(sum(map(len, chunks)) - 4) + chunks[0][4:]
    return chunks


def expects_response(request: Request) -> bool:
    """False only for Produce with ``acks=0``: Kafka sends no response to those at all."""
    body = request.body
    return not (type(body) is ProduceRequest and body.acks == 0)


def api_versions_response(
    error_code: int = ErrorCode.NONE, throttle_time_ms: int = 0
) -> ApiVersionsResponse:
    """The ApiVersions answer listing ``SUPPORTED_VERSIONS``; with
    ``ErrorCode.UNSUPPORTED_VERSION`` it is the reply to an ApiVersions version we lack."""
    return ApiVersionsResponse(
        error_code=error_code,
        api_keys=[
            ApiVersion(api_key=key, min_version=low, max_version=high)
            for key, (low, high) in sorted(SUPPORTED_VERSIONS.items())
        ],
        throttle_time_ms=throttle_time_ms,
    )
