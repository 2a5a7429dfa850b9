"""The log: ordered, durable messages per stream, behind one ``Store`` interface.

Nothing here knows HTTP or Kafka; both front doors translate their protocol into these calls.
"""

from ._errors import (
    ContentTypeMismatch,
    InvalidRequest,
    LogError,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StorageError,
    StreamClosed,
    StreamConflict,
    StreamGone,
    StreamNotFound,
    StreamSeqConflict,
)
from ._memory import MemoryStore
from ._model import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    ForkSpec,
    ProducerClaim,
    ReadResult,
    StreamConfig,
    StreamInfo,
    is_json_content_type,
    normalize_content_type,
)
from ._offsets import OFFSET_BEGINNING, OFFSET_NOW, format_offset, parse_offset
from ._sqlite import SqliteStore
from ._store import DEFAULT_MAX_READ_BYTES, Store

__all__ = [
    "DEFAULT_MAX_READ_BYTES",
    "OFFSET_BEGINNING",
    "OFFSET_NOW",
    "AppendRequest",
    "AppendResult",
    "ContentTypeMismatch",
    "CreateRequest",
    "CreateResult",
    "ForkSpec",
    "InvalidRequest",
    "LogError",
    "MemoryStore",
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
    "is_json_content_type",
    "normalize_content_type",
    "parse_offset",
]
