"""aiokafka's exceptions (and the OS's) as the SDK's, at the boundary.

``translate(exc, where)`` walks the exception's class hierarchy and takes the first entry of
``_TABLE`` (so the most specific class wins: ``TopicAuthorizationFailedError`` before
``BrokerResponseError``); what is not in the table falls back to the error class of the
operation (``where``). The original exception is kept as ``__cause__`` (``raise ... from``),
its Kafka error code as ``kafka_code``, and its ``retriable`` flag as ``retryable`` unless the
table knows better.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any, Literal

import aiokafka.errors as ak

from millstream.kafka.config import ClientConfig
from millstream.kafka.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionError,
    ConsumerError,
    ProducerError,
    RateLimitError,
    SerializationError,
    StreamlineError,
    TimeoutError,
    TopicError,
)

__all__ = [
    "Where",
    "deserialization_error",
    "serialization_error",
    "start_bounded",
    "translate",
]

#: The operation that failed; decides the error class when the exception itself does not.
Where = Literal["connect", "produce", "consume", "admin"]

_FALLBACK: dict[Where, type[StreamlineError]] = {
    "connect": ConnectionError,
    "produce": ProducerError,
    "consume": ConsumerError,
    "admin": TopicError,
}

_COORDINATOR = "The group coordinator is moving or loading; the call may succeed shortly"
_LEADER = "Partition leadership is changing; the call may succeed once metadata refreshes"

# aiokafka class -> (SDK class, hint or None for the class's default, retryable or None to
# keep aiokafka's own ``retriable``)
_TABLE: dict[type[BaseException], tuple[type[StreamlineError], str | None, bool | None]] = {
    # The connection
    ak.KafkaConnectionError: (ConnectionError, None, True),
    ak.NodeNotReadyError: (ConnectionError, None, True),
    ak.NoBrokersAvailable: (ConnectionError, None, True),
    ak.BrokerNotAvailableError: (ConnectionError, None, True),
    ak.KafkaUnavailableError: (ConnectionError, None, True),
    ak.MetadataEmptyBrokerList: (ConnectionError, None, True),
    ak.CorrelationIdError: (ConnectionError, "The connection lost track of responses", True),
    ak.KafkaProtocolError: (ConnectionError, "The broker sent a malformed response", True),
    ak.Cancelled: (ConnectionError, "The request was cancelled when its connection closed", True),
    ConnectionRefusedError: (ConnectionError, None, True),
    OSError: (ConnectionError, None, True),
    # Time
    ak.KafkaTimeoutError: (TimeoutError, None, True),
    ak.RequestTimedOutError: (TimeoutError, None, True),
    asyncio.TimeoutError: (TimeoutError, None, True),
    # Topics and partitions
    ak.UnknownTopicOrPartitionError: (
        TopicError,
        "The topic or partition does not exist: create it with admin.create_topic(...), "
        "or enable auto-creation on the broker",
        False,
    ),
    ak.TopicAlreadyExistsError: (
        TopicError,
        "A topic of this name exists; use it, or delete it first",
        False,
    ),
    ak.InvalidTopicError: (
        TopicError,
        "The broker refuses this topic name (internal or reserved)",
        False,
    ),
    ak.InvalidPartitionsError: (TopicError, "Partition counts must be at least 1", False),
    ak.InvalidReplicationFactorError: (
        TopicError,
        "The replication factor cannot exceed the number of brokers (1 for millstream)",
        False,
    ),
    ak.InvalidReplicationAssignmentError: (TopicError, None, False),
    ak.InvalidConfigurationError: (
        TopicError,
        "The broker refused a topic configuration entry (TopicConfig.config)",
        False,
    ),
    ak.PolicyViolationError: (TopicError, "The broker's policy refuses this request", False),
    ak.LeaderNotAvailableError: (TopicError, _LEADER, True),
    ak.NotLeaderForPartitionError: (TopicError, _LEADER, True),
    ak.ReplicaNotAvailableError: (TopicError, _LEADER, True),
    ak.NotControllerError: (TopicError, _LEADER, True),
    ak.StaleMetadata: (TopicError, _LEADER, True),
    ak.KafkaStorageError: (TopicError, "The broker could not store or read the data", True),
    # Authentication and authorization
    ak.AuthenticationFailedError: (AuthenticationError, None, False),
    ak.AuthenticationMethodNotSupported: (
        AuthenticationError,
        "The broker does not offer this sasl_mechanism; check which it supports",
        False,
    ),
    ak.SaslAuthenticationFailed: (AuthenticationError, None, False),
    ak.UnsupportedSaslMechanismError: (
        AuthenticationError,
        "The broker does not offer this sasl_mechanism; check which it supports",
        False,
    ),
    ak.IllegalSaslStateError: (AuthenticationError, None, False),
    ssl.SSLCertVerificationError: (
        AuthenticationError,
        "The broker's certificate is not trusted: set ssl_cafile to the CA that signed it",
        False,
    ),
    ssl.SSLError: (
        ConnectionError,
        "The TLS handshake failed: is the listener TLS (security_protocol) and the CA right?",
        False,
    ),
    ak.TopicAuthorizationFailedError: (AuthorizationError, None, False),
    ak.GroupAuthorizationFailedError: (AuthorizationError, None, False),
    ak.ClusterAuthorizationFailedError: (AuthorizationError, None, False),
    ak.TransactionalIdAuthorizationFailed: (AuthorizationError, None, False),
    # Producing
    ak.MessageSizeTooLargeError: (
        ProducerError,
        "The record is larger than the broker accepts; make it smaller or raise the limit",
        False,
    ),
    ak.RecordTooLargeError: (
        ProducerError,
        "The record is larger than max_request_size; make it smaller or raise the setting",
        False,
    ),
    ak.RecordListTooLargeError: (
        ProducerError,
        "The batch is larger than the broker accepts; lower batch_size",
        False,
    ),
    ak.CorruptRecordException: (ProducerError, "The broker found a corrupt record", False),
    ak.InvalidTimestampError: (
        ProducerError,
        "timestamp_ms is outside what the broker accepts",
        False,
    ),
    ak.InvalidRequiredAcksError: (ConfigurationError, "Use acks='all', 0 or 1", False),
    ak.NotEnoughReplicasError: (ProducerError, None, True),
    ak.NotEnoughReplicasAfterAppendError: (ProducerError, None, True),
    ak.OutOfOrderSequenceNumber: (ProducerError, None, False),
    ak.DuplicateSequenceNumber: (ProducerError, None, False),
    ak.InvalidProducerEpoch: (ProducerError, None, False),
    ak.UnknownProducerId: (ProducerError, None, False),
    ak.ProducerFenced: (ProducerError, None, False),
    ak.ProducerClosed: (ProducerError, "The producer was closed; start it again", False),
    ak.UnsupportedCodecError: (
        ConfigurationError,
        "This compression_type needs the cramjam package (pip install cramjam)",
        False,
    ),
    # Consuming
    ak.OffsetOutOfRangeError: (
        ConsumerError,
        "The offset is outside the log; seek_to_beginning()/seek_to_end() or set auto_offset_reset",
        False,
    ),
    ak.NoOffsetForPartitionError: (
        ConsumerError,
        "No committed offset and auto_offset_reset='none'; seek first or choose "
        "'earliest'/'latest'",
        False,
    ),
    ak.CommitFailedError: (
        ConsumerError,
        "The group rebalanced before the commit; poll more often or lower max_poll_records",
        False,
    ),
    ak.IllegalGenerationError: (ConsumerError, "The group rebalanced; rejoin and retry", True),
    ak.UnknownMemberIdError: (ConsumerError, "The group no longer knows this member", True),
    ak.RebalanceInProgressError: (ConsumerError, "The group is rebalancing", True),
    ak.GroupLoadInProgressError: (ConsumerError, _COORDINATOR, True),
    ak.GroupCoordinatorNotAvailableError: (ConsumerError, _COORDINATOR, True),
    ak.NotCoordinatorForGroupError: (ConsumerError, _COORDINATOR, True),
    ak.InvalidGroupIdError: (ConfigurationError, "group_id must be a non-empty string", False),
    ak.InvalidSessionTimeoutError: (
        ConfigurationError,
        "The broker refuses session_timeout_ms; choose a value within its limits",
        False,
    ),
    ak.InconsistentGroupProtocolError: (ConsumerError, None, False),
    ak.OffsetMetadataTooLargeError: (ConsumerError, None, False),
    ak.InvalidCommitOffsetSizeError: (ConsumerError, None, False),
    ak.ConsumerStoppedError: (ConsumerError, "The consumer was closed", False),
    ak.IllegalOperation: (
        ConfigurationError,
        "This operation needs a group_id (commit/committed) or a subscription",
        False,
    ),
    ak.IllegalStateError: (ConsumerError, None, False),
    ak.GroupIdNotFound: (ConsumerError, "No consumer group of this id exists", False),
    ak.NonEmptyGroup: (ConsumerError, "The group still has members", False),
    # The broker's abilities and limits
    ak.UnsupportedVersionError: (
        ConfigurationError,
        "The broker does not support this request version or feature",
        False,
    ),
    ak.IncompatibleBrokerVersion: (
        ConfigurationError,
        "The broker is too old for this feature",
        False,
    ),
    ak.UnrecognizedBrokerVersion: (ConfigurationError, None, False),
    ak.KafkaConfigurationError: (ConfigurationError, None, False),
    ak.IllegalArgumentError: (ConfigurationError, None, False),
    ak.QuotaViolationError: (RateLimitError, None, True),
    ak.UnknownError: (StreamlineError, "The broker failed for an unknown reason", None),
}


def translate(exc: BaseException, where: Where, context: str = "") -> StreamlineError:
    """The SDK error for ``exc`` raised during ``where``; ``context`` prefixes the message
    (``"send to 'orders'"``). A ``StreamlineError`` is returned unchanged."""
    if isinstance(exc, StreamlineError):
        return exc
    entry = None
    for klass in type(exc).__mro__:
        entry = _TABLE.get(klass)
        if entry is not None:
            break
    try:
        detail = str(exc) or type(exc).__name__
    except Exception:  # some aiokafka errors cannot print themselves (no errno)
        detail = type(exc).__name__
    if context:
        detail = f"{context}: {detail}"
    kafka_code = getattr(exc, "errno", None)
    kafka_code = kafka_code if isinstance(kafka_code, int) else None
    retriable = bool(getattr(exc, "retriable", False))
    if entry is None:
        cls = _FALLBACK[where]
        return cls(detail, retryable=retriable, kafka_code=kafka_code)
    cls, hint, retryable = entry
    if cls is RateLimitError:
        return RateLimitError(0, detail, hint=hint, kafka_code=kafka_code)
    return cls(
        detail,
        hint=hint,
        retryable=retriable if retryable is None else retryable,
        kafka_code=kafka_code,
    )


def serialization_error(exc: BaseException, what: str) -> SerializationError:
    """A serializer or deserializer raised ``exc`` on ``what`` (``"value for 'orders'"``)."""
    return SerializationError(f"cannot serialize {what}: {exc}")


def deserialization_error(exc: BaseException, what: str) -> SerializationError:
    return SerializationError(
        f"cannot deserialize {what}: {exc}",
        hint="The consumer's key_deserializer/value_deserializer does not fit this record",
    )


class _BootstrapErrors(logging.Handler):
    """Collects the exceptions aiokafka logs while bootstrapping: it tries every server, logs
    each failure (a refused SASL login, an untrusted certificate) and then raises only a
    generic "Unable to bootstrap", which would hide the reason."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors.extend(arg for arg in args if isinstance(arg, BaseException))


_REVEALING = (
    ak.AuthenticationFailedError,
    ak.SaslAuthenticationFailed,
    ak.UnsupportedSaslMechanismError,
    ak.IllegalSaslStateError,
    ak.AuthenticationMethodNotSupported,
    ssl.SSLError,
)


def _bootstrap_failure(
    exc: Exception, logged: list[BaseException], config: ClientConfig, where: str
) -> StreamlineError:
    for cause in logged:
        if isinstance(cause, _REVEALING):
            return translate(cause, "connect", where)
    if config.uses_sasl and isinstance(exc, KeyError | ValueError | IndexError):
        # aiokafka's SCRAM client fails this way when the broker rejects the login
        return AuthenticationError(
            f"{where}: the broker rejected the SASL {config.sasl_mechanism} login ({exc!r})",
        )
    if isinstance(exc, ak.KafkaConnectionError) and "Unable to bootstrap" in str(exc):
        seen = f" ({logged[-1]})" if logged else ""
        error: StreamlineError = ConnectionError(f"{where}: no broker answered{seen}")
    else:
        error = translate(exc, "connect", where)
    if config.uses_sasl and isinstance(error, ConnectionError):
        error.hint = (
            f"{error.hint}; the broker may also have refused the SASL "
            f"{config.sasl_mechanism} login or not offer that mechanism"
        )
    return error


async def start_bounded(started: Any, config: ClientConfig, what: str) -> None:
    """``await started.start()`` (an aiokafka producer, consumer or admin client) within
    ``connection_timeout_ms``; on any failure stop it again and raise the SDK's error, from the
    most telling cause aiokafka saw."""
    capture = _BootstrapErrors()
    aiokafka_logger = logging.getLogger("aiokafka")
    aiokafka_logger.addHandler(capture)
    try:
        async with asyncio.timeout(config.connection_timeout_ms / 1000):
            await started.start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await (started.close() if hasattr(started, "close") else started.stop())
        if isinstance(exc, Exception):
            where = f"{what} could not connect to {config.bootstrap_servers}"
            raise _bootstrap_failure(exc, capture.errors, config, where) from exc
        raise
    finally:
        aiokafka_logger.removeHandler(capture)
