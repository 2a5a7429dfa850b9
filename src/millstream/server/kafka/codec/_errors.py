"""Errors the Kafka codec raises, and what a server does about each.

KafkaCodecError                  base; ``close_connection`` says whether to hang up
├── FrameError                   the size prefix is unusable: close the connection
│   ├── FrameTooLarge            larger than the configured maximum request size
│   └── InvalidFrameSize         negative size
├── DecodeError                  a frame that is not a valid request/response: close
│   ├── UnsupportedApiKey        an API key the codec does not know: close
│   └── UnsupportedVersion       a known API at a version outside SUPPORTED_VERSIONS;
│                                for ApiVersions answer error 35 (see the package docs)
└── EncodeError                  a value the codec cannot encode (a bug in the caller)

Decode errors carry ``header`` (a ``RequestHeader``) when the frame's first eight bytes
(api key, api version, correlation id) could be read, so a server can log or answer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._headers import RequestHeader

__all__ = [
    "DecodeError",
    "EncodeError",
    "FrameError",
    "FrameTooLarge",
    "InvalidFrameSize",
    "KafkaCodecError",
    "UnsupportedApiKey",
    "UnsupportedVersion",
]


class KafkaCodecError(ValueError):
    """Base of the codec's errors; ``hint`` says what to do, ``close_connection`` whether the
    connection can go on (a Kafka stream has no resynchronisation point after bad bytes)."""

    close_connection = True
    hint = "close the connection: the peer does not speak the Kafka protocol as expected"

    def __init__(self, message: str, *, header: RequestHeader | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.header = header


class FrameError(KafkaCodecError):
    """The 4-byte size prefix of a frame cannot be honoured."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class FrameTooLarge(FrameError):
    """A frame larger than the buffer's ``max_frame_size`` (the broker's max request size)."""

    hint = "close the connection; raise the maximum request size if the client is legitimate"


class InvalidFrameSize(FrameError):
    """A negative frame size."""


class DecodeError(KafkaCodecError):
    """The frame is truncated, has impossible lengths or counts, or bytes after its body."""


class UnsupportedApiKey(DecodeError):
    """The request names an API key the codec does not implement."""

    hint = "close the connection, as Kafka brokers do for unknown API keys"


class UnsupportedVersion(DecodeError):
    """The request names a known API at a version outside ``SUPPORTED_VERSIONS``.

    For ApiVersions (key 18) the server answers ``encode_response(error.header,
    api_versions_response(ErrorCode.UNSUPPORTED_VERSION))`` (a v0 body) and keeps the
    connection; clients then retry with a version from that list. Other APIs: close.
    """

    hint = "answer ApiVersions with UNSUPPORTED_VERSION and the supported ranges; else close"

    @property
    def close_connection(self) -> bool:  # type: ignore[override]
        return not (self.header is not None and self.header.api_key == 18)


class EncodeError(KafkaCodecError):
    """A response value does not fit its wire type (out-of-range integer, ``None`` where the
    version has no null, wrong message for the request): a bug in the caller, not the peer."""

    hint = "fix the value handed to the encoder"
