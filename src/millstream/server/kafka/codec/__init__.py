"""Kafka wire codec (sans-IO): bytes in, typed requests out; typed responses in, bytes out.

No sockets here; the broker's connection loop is a few lines around four calls::

    from millstream.server.kafka import codec

    frames = codec.FrameBuffer(max_frame_size=max_request_size)     # one per connection

    def data_received(self, data: bytes) -> None:                   # asyncio.Protocol
        try:
            for frame in frames.feed(data):                          # whole frames, in order
                self.handle(frame)
        except codec.FrameError:                                     # oversized / negative size
            self.transport.close()

    def handle(self, frame: bytes) -> None:
        try:
            request = codec.decode_request(frame)
        except codec.UnsupportedVersion as exc:
            if not exc.close_connection:                             # ApiVersions too new for us
                self.transport.writelines(codec.encode_response(
                    exc.header, codec.api_versions_response(codec.ErrorCode.UNSUPPORTED_VERSION)))
                return
            self.transport.close()
            return
        except codec.DecodeError:                                    # garbage, unknown API key
            self.transport.close()
            return
        response = ...  # dispatch on type(request.body): ProduceRequest, FetchRequest, ...
        if codec.expects_response(request):                          # Produce acks=0: no answer
            self.transport.writelines(codec.encode_response(request.header, response))

Rules the codec keeps so the broker need not:

- **Routing before decoding.** ``decode_request`` reads api key, version and correlation id
  first and raises ``UnsupportedApiKey`` or ``UnsupportedVersion`` (with ``.header``) before
  the body, so any version can be answered or refused. Versions outside ``SUPPORTED_VERSIONS``
  are never decoded.
- **Answer with the request's header.** ``encode_response(request.header, body)`` echoes the
  correlation id, encodes ``body`` at the version the client asked for, and picks the response
  header: flexible (v1) from each API's first flexible version, except ApiVersions, whose
  response header is always v0. An ApiVersions request above our highest version is answered
  with a v0 body (KIP-511): pass ``api_versions_response(ErrorCode.UNSUPPORTED_VERSION)`` and
  the client retries with a version from its list. ``api_versions_response()`` (no error) is
  also the normal answer: it lists ``SUPPORTED_VERSIONS``, the one table of what we advertise.
- **One type per message, all versions.** A response dataclass holds the fields of every
  version; fields absent from the requested version are skipped when encoding (so a handler
  fills everything it knows) and keep their defaults when decoding. Flexible versions' tagged
  fields are ordinary fields with defaults; they are sent only when they differ from them.
- **Records stay opaque and uncopied.** A decoded ``ProduceRequest`` partition's ``records``
  is a ``memoryview`` of the frame holding the client's record batch (never parsed here;
  ``bytes()`` it to keep it past the request). A ``FetchResponse`` partition's ``records``
  takes a buffer or a list of buffers (stored batches, one after another); record data of
  8 KiB or more is returned by ``encode_response`` as separate chunks for
  ``transport.writelines``, never joined (uvloop writes them with one vectored write).
- **Bad bytes raise one error tree.** Truncated bodies, impossible lengths or counts, bytes
  after the body: ``DecodeError`` (a ``KafkaCodecError``; never ``IndexError``/``struct.error``).
  Counts are checked against the bytes left before anything is allocated. Every error says in
  ``close_connection`` whether the connection can go on; a Kafka byte stream cannot be
  resynchronised, so only the ApiVersions case above keeps it.
- **Values are immutable dataclasses** (frozen, slotted, keyword-only); decoded arrays are
  lists. Error codes are ``ErrorCode`` members (``.retriable`` as in Kafka). Topic ids are
  ``ZERO_UUID`` (millstream has none); Produce and Fetch are capped below their topic-id
  versions, and a Metadata/DeleteTopics entry that names only a topic id is for the broker to
  refuse (``UNKNOWN_TOPIC_ID``).

``encode_request`` and ``decode_response`` do the client's half, for tests and tools.
Messages are generated from Kafka's JSON schemas by ``tools/gen_kafka_messages.py``; the
versions table, the choice of this codec and its measurements are in ``docs/kafka-codec.md``.
"""

from __future__ import annotations

from ._api import (
    MESSAGES,
    Request,
    RequestBody,
    ResponseBody,
    api_versions_response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    expects_response,
)
from ._error_codes import (
    ErrorCode,
)
from ._errors import (
    DecodeError,
    EncodeError,
    FrameError,
    FrameTooLarge,
    InvalidFrameSize,
    KafkaCodecError,
    UnsupportedApiKey,
    UnsupportedVersion,
)
from ._frames import (
    DEFAULT_MAX_FRAME_SIZE,
    FrameBuffer,
)
from ._headers import (
    RequestHeader,
)
from ._msg_admin import (
    CreatableReplicaAssignment,
    CreatableTopic,
    CreatableTopicConfig,
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreatePartitionsAssignment,
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreatePartitionsTopic,
    CreatePartitionsTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeletableTopicResult,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DeleteTopicState,
    DescribeConfigsRequest,
    DescribeConfigsResource,
    DescribeConfigsResourceResult,
    DescribeConfigsResponse,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)
from ._msg_cluster import (
    ApiVersion,
    ApiVersionsRequest,
    ApiVersionsResponse,
    FinalizedFeatureKey,
    MetadataRequest,
    MetadataRequestTopic,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
    SupportedFeatureKey,
)
from ._msg_fetch import (
    AbortedTransaction,
    DeleteRecordsPartition,
    DeleteRecordsPartitionResult,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteRecordsTopic,
    DeleteRecordsTopicResult,
    EpochEndOffset,
    FetchableTopicResponse,
    FetchLeaderIdAndEpoch,
    FetchPartition,
    FetchRequest,
    FetchResponse,
    FetchTopic,
    ForgottenTopic,
    ListOffsetsPartition,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopic,
    ListOffsetsTopicResponse,
    PartitionData,
    SnapshotId,
)
from ._msg_groups import (
    Coordinator,
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupRequestProtocol,
    JoinGroupResponse,
    JoinGroupResponseMember,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListedGroup,
    ListGroupsRequest,
    ListGroupsResponse,
    MemberIdentity,
    MemberResponse,
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
    SyncGroupRequest,
    SyncGroupRequestAssignment,
    SyncGroupResponse,
)
from ._msg_produce import (
    BatchIndexAndErrorMessage,
    InitProducerIdRequest,
    InitProducerIdResponse,
    LeaderIdAndEpoch,
    NodeEndpoint,
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
    TopicProduceResponse,
)
from ._msg_sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from ._primitives import (
    ZERO_UUID,
    RecordData,
)
from ._versions import (
    SUPPORTED_VERSIONS,
    ApiKey,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MESSAGES",
    "SUPPORTED_VERSIONS",
    "ZERO_UUID",
    "AbortedTransaction",
    "ApiKey",
    "ApiVersion",
    "ApiVersionsRequest",
    "ApiVersionsResponse",
    "BatchIndexAndErrorMessage",
    "Coordinator",
    "CreatableReplicaAssignment",
    "CreatableTopic",
    "CreatableTopicConfig",
    "CreatableTopicConfigs",
    "CreatableTopicResult",
    "CreatePartitionsAssignment",
    "CreatePartitionsRequest",
    "CreatePartitionsResponse",
    "CreatePartitionsTopic",
    "CreatePartitionsTopicResult",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
    "DecodeError",
    "DeletableTopicResult",
    "DeleteRecordsPartition",
    "DeleteRecordsPartitionResult",
    "DeleteRecordsRequest",
    "DeleteRecordsResponse",
    "DeleteRecordsTopic",
    "DeleteRecordsTopicResult",
    "DeleteTopicState",
    "DeleteTopicsRequest",
    "DeleteTopicsResponse",
    "DescribeConfigsRequest",
    "DescribeConfigsResource",
    "DescribeConfigsResourceResult",
    "DescribeConfigsResponse",
    "DescribeConfigsResult",
    "DescribeConfigsSynonym",
    "DescribeGroupsRequest",
    "DescribeGroupsResponse",
    "DescribedGroup",
    "DescribedGroupMember",
    "EncodeError",
    "EpochEndOffset",
    "ErrorCode",
    "FetchLeaderIdAndEpoch",
    "FetchPartition",
    "FetchRequest",
    "FetchResponse",
    "FetchTopic",
    "FetchableTopicResponse",
    "FinalizedFeatureKey",
    "FindCoordinatorRequest",
    "FindCoordinatorResponse",
    "ForgottenTopic",
    "FrameBuffer",
    "FrameError",
    "FrameTooLarge",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "InitProducerIdRequest",
    "InitProducerIdResponse",
    "InvalidFrameSize",
    "JoinGroupRequest",
    "JoinGroupRequestProtocol",
    "JoinGroupResponse",
    "JoinGroupResponseMember",
    "KafkaCodecError",
    "LeaderIdAndEpoch",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "ListGroupsRequest",
    "ListGroupsResponse",
    "ListOffsetsPartition",
    "ListOffsetsPartitionResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "ListOffsetsTopic",
    "ListOffsetsTopicResponse",
    "ListedGroup",
    "MemberIdentity",
    "MemberResponse",
    "MetadataRequest",
    "MetadataRequestTopic",
    "MetadataResponse",
    "MetadataResponseBroker",
    "MetadataResponsePartition",
    "MetadataResponseTopic",
    "NodeEndpoint",
    "OffsetCommitRequest",
    "OffsetCommitRequestPartition",
    "OffsetCommitRequestTopic",
    "OffsetCommitResponse",
    "OffsetCommitResponsePartition",
    "OffsetCommitResponseTopic",
    "OffsetFetchRequest",
    "OffsetFetchRequestGroup",
    "OffsetFetchRequestTopic",
    "OffsetFetchRequestTopics",
    "OffsetFetchResponse",
    "OffsetFetchResponseGroup",
    "OffsetFetchResponsePartition",
    "OffsetFetchResponsePartitions",
    "OffsetFetchResponseTopic",
    "OffsetFetchResponseTopics",
    "PartitionData",
    "PartitionProduceData",
    "PartitionProduceResponse",
    "ProduceRequest",
    "ProduceResponse",
    "RecordData",
    "Request",
    "RequestBody",
    "RequestHeader",
    "ResponseBody",
    "SaslAuthenticateRequest",
    "SaslAuthenticateResponse",
    "SaslHandshakeRequest",
    "SaslHandshakeResponse",
    "SnapshotId",
    "SupportedFeatureKey",
    "SyncGroupRequest",
    "SyncGroupRequestAssignment",
    "SyncGroupResponse",
    "TopicProduceData",
    "TopicProduceResponse",
    "UnsupportedApiKey",
    "UnsupportedVersion",
    "api_versions_response",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "expects_response",
]
