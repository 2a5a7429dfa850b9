"""Every error the client raises, one tree, so callers catch ours and never httpx's.

    DurableStreamError            status, code, message, hint, retryable
    ├── FetchError                the request failed or got an HTTP error with no protocol meaning
    │   └── FetchTimeoutError     connect/read/write/pool timeout (also an httpx.TimeoutException)
    ├── InvalidArgumentError      a bad option, before any request (also a ValueError)
    ├── StreamNotFoundError       404
    ├── StreamExistsError         409 on create: same URL, different configuration
    ├── StreamClosedError         409 + Stream-Closed: the stream accepts no more appends
    ├── SeqConflictError          409 on append: Stream-Seq regression or content-type mismatch
    ├── RetentionGoneError        410: offset before the earliest retained position
    ├── StaleEpochError           403 to an idempotent producer: a newer epoch fenced it
    ├── SequenceGapError          409 to an idempotent producer that cannot be recovered
    ├── StreamConsumedError       a one-shot response consumed twice
    ├── SSEBytesIterationError    raw bytes asked of an SSE read
    ├── SSEReadAllError           read_*() asked of an SSE read (it never ends by itself)
    ├── SSENotSupportedError      the server refused SSE for this stream's content type (400)
    └── SSEEncodingError          an SSE data event is not valid base64

Codes follow the official ``durable-streams`` client: a malformed JSON body or SSE control
event is a ``DurableStreamError`` with code ``PARSE_ERROR``; HTTP errors without a class of
their own carry ``UNAUTHORIZED``, ``FORBIDDEN``, ``RATE_LIMITED``, ``BUSY`` or ``HTTP_ERROR``.

``retryable`` says whether the same request may succeed later; the client already retried such
errors ``RetryPolicy.max_retries`` times before raising.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "DurableStreamError",
    "FetchError",
    "FetchTimeoutError",
    "InvalidArgumentError",
    "RetentionGoneError",
    "SSEBytesIterationError",
    "SSEEncodingError",
    "SSENotSupportedError",
    "SSEReadAllError",
    "SeqConflictError",
    "SequenceGapError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamConsumedError",
    "StreamExistsError",
    "StreamNotFoundError",
]


class DurableStreamError(Exception):
    """Base of every client error: ``status`` (HTTP, or None), ``code``, ``message``, ``hint``."""

    default_code = "ERROR"
    default_hint = ""
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        url: str | None = None,
        details: Any = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.default_code
        self.hint = hint if hint is not None else self.default_hint
        self.url = url
        self.details = details
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text += f" (status={self.status})"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r})"
        )


class FetchError(DurableStreamError):
    """The request did not complete (network) or got an HTTP error the protocol gives no meaning,
    such as 401, 429 or 5xx. ``status`` is None for network failures."""

    default_code = "FETCH_ERROR"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        code: str | None = None,
    ) -> None:
        if retryable is None:
            retryable = status is None or status == 429 or status >= 500
        if hint is None:
            hint = _fetch_hint(status)
        if code is None and status is not None:
            code = _STATUS_CODES.get(status, "HTTP_ERROR")
        super().__init__(message, status=status, url=url, hint=hint, retryable=retryable, code=code)
        self.headers = headers or {}
        self.body = body


# The official client's codes for statuses the protocol gives no meaning.
_STATUS_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 429: "RATE_LIMITED", 503: "BUSY"}


def _fetch_hint(status: int | None) -> str:
    if status is None:
        return "check that the server is running and the URL is right"
    if status in (401, 403):
        return "the server refused the credentials; pass headers= (e.g. Authorization)"
    if status == 429:
        return "the server is rate limiting; slow down or raise RetryPolicy.max_retries"
    if status >= 500:
        return "the server failed; the request may succeed later"
    return ""


class FetchTimeoutError(FetchError, httpx.TimeoutException):
    """A connect, read, write or pool timeout expired.

    Also an ``httpx.TimeoutException``, which is what the official client lets through, so
    ``except httpx.TimeoutException`` written for it keeps working."""

    default_code = "TIMEOUT"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        FetchError.__init__(
            self,
            message,
            url=url,
            hint="raise timeout= on the client or the call, or check the server's health",
            retryable=True,
        )
        self._request = None  # httpx.RequestError's slot: no httpx.Request is exposed


class InvalidArgumentError(DurableStreamError, ValueError):
    """An option out of range (``RetryPolicy``, producer limits), refused before any request.

    A ``ValueError`` too, as the official client raises; ``argument`` names the parameter."""

    default_code = "INVALID_ARGUMENT"

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}", hint=f"pass a valid {argument}")
        self.argument = argument


class StreamNotFoundError(DurableStreamError):
    """404: no stream at this URL."""

    default_code = "NOT_FOUND"
    default_hint = "create it first with DurableStream.create(url, content_type=...)"

    def __init__(self, message: str = "Stream not found", *, url: str | None = None) -> None:
        super().__init__(f"{message}: {url}" if url else message, status=404, url=url)


class StreamExistsError(DurableStreamError):
    """409 on create: a stream exists at this URL with a different configuration."""

    default_code = "CONFLICT_EXISTS"
    default_hint = (
        "use DurableStream.connect(url) for the existing stream, or create it with the same "
        "content_type/ttl_seconds/expires_at/closed"
    )

    def __init__(
        self, message: str = "Stream exists with another configuration", *, url: str | None = None
    ) -> None:
        super().__init__(f"{message}: {url}" if url else message, status=409, url=url)


class StreamClosedError(DurableStreamError):
    """409 with ``Stream-Closed: true``: the stream was closed and accepts no more appends."""

    default_code = "STREAM_CLOSED"
    default_hint = "a closed stream stays closed; write to a new stream URL"

    def __init__(
        self,
        message: str = "Stream is closed",
        *,
        url: str | None = None,
        final_offset: str | None = None,
    ) -> None:
        super().__init__(f"{message}: {url}" if url else message, status=409, url=url)
        self.final_offset = final_offset


class SeqConflictError(DurableStreamError):
    """409 on append: ``Stream-Seq`` not greater than the last one, or content-type mismatch."""

    default_code = "CONFLICT_SEQ"
    default_hint = "seq= values must increase (compared as strings); check the content type"

    def __init__(
        self,
        message: str = "Append conflict: sequence regression or content-type mismatch",
        *,
        url: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, status=409, url=url, details=details)


class RetentionGoneError(DurableStreamError):
    """410: the offset is before the earliest retained data (or the stream was deleted)."""

    default_code = "RETENTION_GONE"
    default_hint = "read from offset='-1' (the earliest retained data) or from head().offset"

    def __init__(
        self,
        message: str = "Offset is before the earliest retained position",
        *,
        url: str | None = None,
    ) -> None:
        super().__init__(message, status=410, url=url)


class StaleEpochError(DurableStreamError):
    """403 to an idempotent producer: another producer with a newer epoch owns this id."""

    default_code = "STALE_EPOCH"
    default_hint = (
        "another producer took over this producer id; use auto_claim=True or a higher epoch"
    )

    def __init__(self, current_epoch: int, *, url: str | None = None) -> None:
        super().__init__(
            f"Producer epoch is stale; the server's epoch is {current_epoch}", status=403, url=url
        )
        self.current_epoch = current_epoch


class SequenceGapError(DurableStreamError):
    """409 to an idempotent producer whose earlier batches can no longer fill the gap."""

    default_code = "SEQUENCE_GAP"
    default_hint = "an earlier batch of this producer failed; restart it with a higher epoch"

    def __init__(self, expected_seq: int, received_seq: int, *, url: str | None = None) -> None:
        super().__init__(
            f"Producer sequence gap: server expected {expected_seq}, got {received_seq}",
            status=409,
            url=url,
        )
        self.expected_seq = expected_seq
        self.received_seq = received_seq


class StreamConsumedError(DurableStreamError):
    """A one-shot ``StreamResponse`` was consumed a second time."""

    default_code = "ALREADY_CONSUMED"
    default_hint = "open a new response with stream()/astream() for each way of reading"

    def __init__(self, attempted: str, consumed_by: str) -> None:
        super().__init__(f"Cannot call {attempted}(): the response was consumed by {consumed_by}()")
        self.attempted_method = attempted
        self.consumed_by = consumed_by


class SSEBytesIterationError(DurableStreamError):
    """Raw bytes iteration was asked of an SSE read."""

    default_code = "SSE_BYTES_NOT_SUPPORTED"
    default_hint = "use iter_text(), iter_json() or iter_events() with live='sse'"

    def __init__(self) -> None:
        super().__init__("Raw bytes iteration is not available in SSE mode")


class SSEReadAllError(DurableStreamError):
    """``read_*()`` on an SSE read: the connection stays open, so there is no "all"."""

    default_code = "SSE_READ_ALL_NOT_SUPPORTED"
    default_hint = "iterate with iter_json()/iter_text(), or read with live=False or 'long-poll'"

    def __init__(self, method: str) -> None:
        super().__init__(f"Cannot use {method}() with live='sse': SSE reads stay open")
        self.method = method


class SSENotSupportedError(DurableStreamError):
    """The server refused an SSE read (400): SSE needs a text/* or application/json stream,
    unless the server encodes binary data as base64."""

    default_code = "SSE_NOT_SUPPORTED"
    default_hint = "read this stream with live='long-poll'"

    def __init__(self, content_type: str | None = None, *, url: str | None = None) -> None:
        what = f" for content type {content_type}" if content_type else ""
        super().__init__(f"SSE is not supported{what}", status=400, url=url)
        self.content_type = content_type


class SSEEncodingError(DurableStreamError):
    """An SSE data event announced as base64 does not decode."""

    default_code = "SSE_ENCODING_ERROR"
    default_hint = "the server sent corrupt base64 in an SSE data event"
