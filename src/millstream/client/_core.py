"""The I/O-free core shared by the sync and async twins: requests as data, the retry flow as a
generator, protocol headers, error mapping, and JSON framing of appends and reads.

Multi-step operations are generators (``Flow``) that yield ``Step``s and return their result.
Each step is sent back its outcome: a value, or the ``httpx.TransportError`` it raised (the flow
decides what a failure means). Anything a flow yields that is not a ``Step`` is handed out to
the caller (a read's chunks). ``_io`` holds the only two loops that perform steps.
"""

from __future__ import annotations

import email.utils
import functools
import random
import ssl
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import httpx
import orjson

from millstream.client._errors import (
    DurableStreamError,
    FetchError,
    FetchTimeoutError,
    InvalidArgumentError,
    RetentionGoneError,
    SeqConflictError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
)
from millstream.client._types import HeadersLike, ParamsLike, TimeoutLike

__all__ = [
    "DEFAULT_TIMEOUT",
    "Flow",
    "ReadAll",
    "Request",
    "RetryPolicy",
    "Sleep",
    "batch_body",
    "encode_item",
    "error_from_response",
    "is_json",
    "send_flow",
]

T = TypeVar("T")

# Header names (PROTOCOL.md section 13.2 and 5.2.1).
NEXT_OFFSET = "Stream-Next-Offset"
CURSOR = "Stream-Cursor"
UP_TO_DATE = "Stream-Up-To-Date"
CLOSED = "Stream-Closed"
SEQ = "Stream-Seq"
TTL = "Stream-TTL"
EXPIRES_AT = "Stream-Expires-At"
SSE_ENCODING = "Stream-SSE-Data-Encoding"
PRODUCER_ID = "Producer-Id"
PRODUCER_EPOCH = "Producer-Epoch"
PRODUCER_SEQ = "Producer-Seq"
PRODUCER_EXPECTED_SEQ = "Producer-Expected-Seq"
PRODUCER_RECEIVED_SEQ = "Producer-Received-Seq"

# Unary calls: 10 s to connect, 30 s for everything else. Live reads raise the read timeout
# to LIVE_READ_TIMEOUT because a long-poll legitimately waits (30 s on most servers).
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
LIVE_READ_TIMEOUT = 65.0


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One default TLS context for every client the SDK creates: building one costs ~40 ms,
    which would otherwise dominate a short ``stream()`` call."""
    return httpx.create_ssl_context()


def is_true(value: str | None) -> bool:
    """Stream-Closed / Stream-Up-To-Date are present only when exactly ``true`` (any case)."""
    return value is not None and value.strip().lower() == "true"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    return media_type(content_type) == "application/json"


def merged(*layers: HeadersLike | ParamsLike | None) -> dict[str, Any]:
    """Header or parameter layers merged, later ones winning; values stay unevaluated (a
    callable is called by ``_io`` once per request sent, awaited by the async twin)."""
    out: dict[str, Any] = {}
    for layer in layers:
        if layer:
            out.update(layer)
    return out


def make_timeout(value: TimeoutLike | httpx.Timeout, default: httpx.Timeout) -> httpx.Timeout:
    if value is None:
        return default
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(float(value))


def live_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    read = timeout.read
    if read is not None and read < LIVE_READ_TIMEOUT:
        return httpx.Timeout(
            connect=timeout.connect, read=LIVE_READ_TIMEOUT, write=timeout.write, pool=timeout.pool
        )
    return timeout


# --- JSON framing (PROTOCOL.md section 9.1) --------------------------------------------------


def encode_item(value: Any, json_mode: bool) -> bytes:
    """One append's bytes. On JSON streams a ``str`` or ``bytes`` is JSON text already
    serialized (as in the official client) and any other Python value is serialized here;
    other streams take bytes or str. JSON text is checked, so one bad append never fails the
    others batched with it."""
    if json_mode:
        if isinstance(value, str | bytes | bytearray | memoryview):
            raw = value.encode() if isinstance(value, str) else bytes(value)
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise DurableStreamError(
                    f"Not JSON text: {raw[:80]!r} ({exc})",
                    code="BAD_VALUE",
                    hint="a str or bytes on a JSON stream is sent as JSON text; to store a "
                    "string value pass json.dumps(value)",
                ) from exc
            return raw
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise DurableStreamError(
                f"Cannot encode {type(value).__name__} as JSON: {exc}",
                code="BAD_VALUE",
                hint="pass dict, list, int, float, bool or None (or JSON text as str/bytes)",
            ) from exc
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise DurableStreamError(
        f"A non-JSON stream takes bytes or str, not {type(value).__name__}",
        code="BAD_VALUE",
        hint="encode the value yourself, or create the stream with content_type='application/json'",
    )


def batch_body(items: Iterable[bytes], json_mode: bool) -> bytes:
    """A POST body holding several appends: one JSON array, or the bytes back to back."""
    if json_mode:
        return b"[" + b",".join(items) + b"]"
    return b"".join(items)


def json_items(body: bytes) -> list[Any]:
    """A JSON read body is one array of messages; anything else counts as one message.
    Malformed JSON raises the official client's parse error (code ``PARSE_ERROR``)."""
    if not body or body.isspace():
        return []
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        preview = body[:100].decode("utf-8", "replace")
        raise DurableStreamError(
            f"Failed to parse JSON response: {exc}. Data: {preview}",
            code="PARSE_ERROR",
            hint="the stream holds malformed JSON, or the response was cut or corrupted",
        ) from exc
    return value if isinstance(value, list) else [value]


# --- Requests, sleeps and the retry flow -----------------------------------------------------


class Step:
    """Something only a twin can do (I/O or waiting); its outcome is sent back to the flow."""

    __slots__ = ()


@dataclass(slots=True)
class Request(Step):
    """Perform one HTTP request. Outcome: the ``httpx.Response`` (body read unless ``stream``,
    then read it with ``ReadAll`` or ``Pieces``/``NextPiece``). ``idempotent`` means a retry
    after any failure is safe. Header and parameter values are evaluated when it is sent."""

    method: str
    url: str
    headers: dict[str, Any] = field(default_factory=dict)  # values may be callables
    params: dict[str, Any] = field(default_factory=dict)  # None leaves a parameter out
    content: bytes | None = None
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    idempotent: bool = True
    stream: bool = False
    long_lived: bool = False  # a live read: it takes a stream slot (millstream._httppool)


@dataclass(frozen=True, slots=True)
class ReadAll(Step):
    """Read a streamed response's whole body. Outcome: ``bytes``."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class Pieces(Step):
    """Start iterating a streamed response's body. Outcome: an opaque iterator for NextPiece."""

    response: httpx.Response


@dataclass(frozen=True, slots=True)
class NextPiece(Step):
    """The next bytes of a body as they arrive. Outcome: ``bytes``, or None at its end."""

    pieces: Any


@dataclass(frozen=True, slots=True)
class Sleep(Step):
    """Wait. Outcome: None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Call(Step):
    """Call a user callback (``on_error``) with ``arg``. Outcome: what it returned (awaited
    by the async twin; the sync twin refuses an awaitable)."""

    function: Callable[[Any], Any]
    arg: Any
    name: str


Outcome: TypeAlias = Any
Flow: TypeAlias = Generator[Any, Outcome, T]


def ask(step: Step) -> Generator[Step, Outcome, Any]:
    """Perform ``step`` inside a flow (``yield from``), raising a transport failure."""
    outcome = yield step
    if isinstance(outcome, httpx.TransportError):
        raise outcome
    return outcome


def returning(flow: Flow[T]) -> Generator[Any, Outcome, None]:
    """A unary flow whose result is handed out as its one delivery (``_io.run_*``)."""
    yield Result((yield from flow))


@dataclass(frozen=True, slots=True)
class Result:
    """The value a unary flow returned."""

    value: Any


# Statuses that mean "not processed, try later" (RFC 9110 15.5.20, 15.6.4): safe to retry even
# for a non-idempotent append. Other 5xx may have happened after the write.
REJECTED_STATUSES = frozenset({429, 503})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport failures that happened before any request byte reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring Retry-After (capped at ``max_delay``).

    Defaults follow the usual Python SDKs: 2 retries, 0.5 s doubling, 8 s cap."""

    max_retries: int = 2
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: bool = True

    def __post_init__(self) -> None:
        # The limits the client-conformance suite's RetryOptions cases require.
        if self.max_retries < 0:
            raise InvalidArgumentError("max_retries", "must be >= 0")
        if not self.initial_delay > 0:
            raise InvalidArgumentError("initial_delay", "must be > 0 seconds")
        if self.max_delay < self.initial_delay:
            raise InvalidArgumentError("max_delay", "must be >= initial_delay")
        if self.multiplier < 1.0:
            raise InvalidArgumentError("multiplier", "must be >= 1.0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        base = min(self.initial_delay * self.multiplier**attempt, self.max_delay)
        return base * (0.5 + random.random() / 2) if self.jitter else base


NO_RETRY = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def may_retry_outcome(request: Request, outcome: httpx.Response | httpx.TransportError) -> bool:
    if isinstance(outcome, httpx.Response):
        status = outcome.status_code
        if status in REJECTED_STATUSES:
            return True
        return request.idempotent and status in RETRY_STATUSES
    return request.idempotent or isinstance(outcome, _NOT_SENT)


def send_flow(request: Request, policy: RetryPolicy) -> Flow[httpx.Response]:
    """Perform ``request`` with retries; return the last response (any status) or raise a
    ``FetchError`` for a transport failure that retries did not cure."""
    attempt = 0
    while True:
        outcome = yield request
        assert outcome is not None
        if attempt < policy.max_retries and may_retry_outcome(request, outcome):
            retry_after = (
                parse_retry_after(outcome.headers.get("retry-after"))
                if isinstance(outcome, httpx.Response)
                else None
            )
            yield Sleep(policy.delay(attempt, retry_after))
            attempt += 1
            continue
        if isinstance(outcome, httpx.Response):
            return outcome
        raise transport_error(outcome, request.url) from outcome


def transport_error(exc: BaseException, url: str) -> FetchError:
    """Translate an httpx transport exception into ours."""
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeoutError(f"{type(exc).__name__} talking to {url}", url=url)
    return FetchError(f"{type(exc).__name__}: {exc or 'connection failed'} ({url})", url=url)


# --- Errors from responses -------------------------------------------------------------------


def _body_message(body: bytes) -> str:
    if not body:
        return ""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(value, dict):
        inner = value.get("error", value)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or inner)
        return str(inner)
    return str(value)


# Statuses with a meaning but no class of their own: (message, code, hint).
_PLAIN_ERRORS = {
    400: (
        "Bad request",
        "BAD_REQUEST",
        "the server rejected the request as malformed; see the message",
    ),
    413: (
        "Payload too large",
        "PAYLOAD_TOO_LARGE",
        "append smaller bodies, or batching=False for very large values",
    ),
}


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    url: str,
    operation: str,
) -> DurableStreamError:
    """The most specific error for a failed response to ``operation`` (create, append, read,
    head, delete, close)."""
    detail = _body_message(body)
    suffix = f": {detail}" if detail else ""
    if status == 404:
        return StreamNotFoundError(url=url)
    if status == 409:
        if is_true(headers.get(CLOSED)):
            return StreamClosedError(url=url, final_offset=headers.get(NEXT_OFFSET))
        if operation == "create":
            return StreamExistsError(url=url)
        return SeqConflictError(f"Append conflict{suffix}", url=url, details=detail or None)
    if status == 410:
        return RetentionGoneError(url=url)
    if status in _PLAIN_ERRORS:
        message, code, hint = _PLAIN_ERRORS[status]
        return DurableStreamError(
            f"{message}{suffix}", status=status, code=code, url=url, hint=hint
        )
    return FetchError(
        f"HTTP {status} from {operation} {url}{suffix}",
        status=status,
        url=url,
        headers=dict(headers),
        body=body,
    )


def check(response: httpx.Response, operation: str) -> httpx.Response:
    if response.status_code >= 400:
        raise error_from_response(
            response.status_code,
            response.headers,
            response.content,
            str(response.request.url.copy_with(query=None)),
            operation,
        )
    return response


def call_on_error_result(result: Any) -> tuple[dict[str, str], dict[str, str]] | None:
    """Validate what an ``on_error`` callback returned: None, or {"headers":..., "params":...}."""
    if result is None:
        return None
    if not isinstance(result, Mapping):
        raise TypeError("on_error must return None or a dict with 'headers' and/or 'params'")
    return dict(result.get("headers") or {}), dict(result.get("params") or {})


Callback: TypeAlias = Callable[..., Any]
