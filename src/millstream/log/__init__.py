"""The log: ordered, durable messages per stream, behind one ``Store`` interface.

Nothing here knows HTTP or Kafka; both front doors translate their protocol into these calls.
"""

from ._errors import (
    ContentTypeMismatch,
    DuplicateSequence,
    InvalidRequest,
    KvConflict,
    LogError,
    OffsetOutOfRange,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StorageError,
    StreamClosed,
    StreamConflict,
    StreamGone,
    StreamNotFound,
    StreamSeqConflict,
)
from ._expiry import RECLAIM_INTERVAL, reclaim_forever
from ._memory import MemoryStore
from ._model import (
    AppendRequest,
    AppendResult,
    BatchReadResult,
    CreateRequest,
    CreateResult,
    ForkSpec,
    KafkaBatch,
    KvItem,
    KvWrite,
    ProducerClaim,
    ProduceResult,
    ReadResult,
    StreamConfig,
    StreamInfo,
    is_json_content_type,
    normalize_content_type,
)
from ._offsets import OFFSET_BEGINNING, OFFSET_NOW, format_offset, parse_offset
from ._paths import (
    is_internal,
    is_partition_path,
    is_topic_name,
    partition_path,
    split_partition_path,
)
from ._sqlite import SqliteStore
from ._store import DEFAULT_MAX_READ_BYTES, Store

__all__ = [
    "DEFAULT_MAX_READ_BYTES",
    "OFFSET_BEGINNING",
    "OFFSET_NOW",
    "RECLAIM_INTERVAL",
    "AppendRequest",
    "AppendResult",
    "BatchReadResult",
    "ContentTypeMismatch",
    "CreateRequest",
    "CreateResult",
    "DuplicateSequence",
    "ForkSpec",
    "InvalidRequest",
    "KafkaBatch",
    "KvConflict",
    "KvItem",
    "KvWrite",
    "LogError",
    "MemoryStore",
    "OffsetOutOfRange",
    "ProduceResult",
    "ProducerClaim",
    "ProducerSequenceGap",
    "ReadResult",
    "SqliteStore",
    "StaleProducerEpoch",
    "StorageError",
    "Store",
    "StreamClosed",
    "StreamConfig",
    "StreamConflict",
    "StreamGone",
    "StreamInfo",
    "StreamNotFound",
    "StreamSeqConflict",
    "format_offset",
    "is_internal",
    "is_json_content_type",
    "is_partition_path",
    "is_topic_name",
    "normalize_content_type",
    "parse_offset",
    "partition_path",
    "reclaim_forever",
    "split_partition_path",
]
