"""Writes: create (PUT, §5.1 and forks §4.2), append/close (POST, §5.2-5.3), delete (§5.4)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from millstream.log import (
    AppendRequest,
    ContentTypeMismatch,
    CreateRequest,
    ForkSpec,
    ProducerClaim,
    StreamClosed,
    StreamConfig,
    StreamInfo,
    is_json_content_type,
    normalize_content_type,
)

from ._errors import HttpError, bad_request
from ._headers import (
    RequestHeaders,
    canonical_content_type,
    parse_expires_at,
    parse_fork_offset,
    parse_producer,
    parse_strict_int,
)
from ._jsonmode import json_messages
from ._responses import Answer, answer, next_offset_header
from ._settings import Settings
from ._types import Headers

__all__ = [
    "AppendHeaders",
    "CreateHeaders",
    "append_answer",
    "create_answer",
    "delete_answer",
    "parse_append_headers",
    "parse_create_headers",
    "stream_info_headers",
]

_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_CT_CACHE: dict[bytes, tuple[str, bool]] = {}  # raw Content-Type → (canonical, JSON?)


def content_type_of(raw: bytes) -> tuple[str, bool]:
    """Canonical form of a Content-Type header and whether it is JSON mode, cached (appends
    repeat the same few values, so the hot path is one dict lookup)."""
    cached = _CT_CACHE.get(raw)
    if cached is None:
        canonical = canonical_content_type(raw)
        cached = (canonical, is_json_content_type(canonical))
        if len(_CT_CACHE) >= 256:
            _CT_CACHE.clear()
        _CT_CACHE[raw] = cached
    return cached


def _declared_length(headers: RequestHeaders) -> int | None:
    raw = headers.get(b"content-length")
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


def _is_true(headers: RequestHeaders, name: bytes) -> bool:
    """Presence headers count only when exactly ``true``, any case (PROTOCOL.md §4.1)."""
    value = headers.get(name)
    return value is not None and value.strip().lower() == b"true"


def stream_info_headers(info: StreamInfo) -> Headers:
    """Headers describing a stream's configuration (HEAD and create answers)."""
    config = info.config
    headers: Headers = [
        (b"content-type", config.content_type.encode()),
        next_offset_header(info.tail),
    ]
    if info.closed:
        headers.append((b"stream-closed", b"true"))
    if config.ttl_seconds is not None:
        headers.append((b"stream-ttl", str(config.ttl_seconds).encode()))
    if config.expires_at is not None:
        stamp = config.expires_at.isoformat().replace("+00:00", "Z")
        headers.append((b"stream-expires-at", stamp.encode()))
    return headers


def source_path(raw: bytes, stream_root_path: str) -> str:
    """The store path named by ``Stream-Forked-From`` (a URL path on this server, §4.2)."""
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise bad_request("Stream-Forked-From must be UTF-8") from None
    if "://" in text:
        text = urlsplit(text).path
    text = unquote(text)
    for prefix in (stream_root_path, "/v1/stream/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        text = text.lstrip("/")
    if not text:
        raise bad_request("Stream-Forked-From must name a stream")
    return text


@dataclass(frozen=True, slots=True)
class CreateHeaders:
    """What a create's request headers say, validated before its body is read."""

    config: StreamConfig
    fork: ForkSpec | None
    closed: bool
    declared_length: int | None


def parse_create_headers(headers: RequestHeaders, stream_root_path: str) -> CreateHeaders:
    """Validate a PUT's headers (400 on bad ones, before any body is read); fork sources are
    URL paths under ``stream_root_path``."""
    forked_raw = headers.get(b"stream-forked-from")
    raw_type = headers.get(b"content-type", b"").strip()
    if raw_type:
        content_type, _ = content_type_of(raw_type)
    else:
        content_type = "" if forked_raw is not None else _DEFAULT_CONTENT_TYPE
    ttl_raw = headers.get(b"stream-ttl")
    expires_raw = headers.get(b"stream-expires-at")
    if ttl_raw is not None and expires_raw is not None:
        raise bad_request("send Stream-TTL or Stream-Expires-At, not both")
    ttl = parse_strict_int(ttl_raw.strip(), "Stream-TTL") if ttl_raw is not None else None
    expires_at = parse_expires_at(expires_raw) if expires_raw is not None else None
    fork: ForkSpec | None = None
    offset_raw = headers.get(b"stream-fork-offset")
    sub_raw = headers.get(b"stream-fork-sub-offset")
    if forked_raw is None:
        if offset_raw is not None or sub_raw is not None:
            raise bad_request(
                "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From"
            )
    else:
        source = source_path(forked_raw, stream_root_path)
        offset = parse_fork_offset(offset_raw) if offset_raw is not None else None
        sub = parse_strict_int(sub_raw.strip(), "Stream-Fork-Sub-Offset") if sub_raw else 0
        if sub_raw is not None and not sub_raw.strip():
            raise bad_request("Stream-Fork-Sub-Offset must be a non-negative integer")
        fork = ForkSpec(source, offset, sub)
    closed = _is_true(headers, b"stream-closed")
    config = StreamConfig(content_type, ttl, expires_at)
    return CreateHeaders(config, fork, closed, _declared_length(headers))


async def create_answer(
    settings: Settings, path: str, parsed: CreateHeaders, body: bytes, location: str
) -> Answer:
    """Create the stream at ``path`` (or fork it) as ``parsed`` says, with ``body`` as its
    first messages; the 201 answer (200 for an idempotent repeat, §5.1)."""
    config = parsed.config
    fork = parsed.fork
    messages: list[bytes] = []
    if body:
        body_type = config.content_type
        if not body_type and fork is not None:
            body_type = (await settings.store.head(fork.source)).config.content_type
        if is_json_content_type(body_type):
            messages = json_messages(body, allow_empty_array=True)
        else:
            messages = [body]
    request = CreateRequest(config, messages, parsed.closed, fork)
    result = await settings.store.create(path, request)
    headers = stream_info_headers(result.info)
    if result.created:
        headers.append((b"location", location.encode()))
    return answer(201 if result.created else 200, headers)


@dataclass(frozen=True, slots=True)
class AppendHeaders:
    """What an append's request headers say, validated before its body is read."""

    producer: ProducerClaim | None
    close: bool
    stream_seq: str | None
    raw_type: bytes
    declared_length: int | None


def parse_append_headers(headers: RequestHeaders) -> AppendHeaders:
    """Validate a POST's headers (400 on bad ones, before any body is read)."""
    producer = parse_producer(headers)
    close = _is_true(headers, b"stream-closed")
    seq_raw = headers.get(b"stream-seq")
    stream_seq = seq_raw.decode("latin-1") if seq_raw is not None else None
    if stream_seq is not None and not stream_seq:
        raise bad_request("Stream-Seq must not be empty")
    raw_type = headers.get(b"content-type", b"").strip()
    return AppendHeaders(producer, close, stream_seq, raw_type, _declared_length(headers))


async def append_answer(
    settings: Settings, path: str, parsed: AppendHeaders, body: bytes
) -> Answer:
    """Append ``body`` (or close) as ``parsed`` says; the 200/204 answer (§5.2-5.3)."""
    producer = parsed.producer
    close = parsed.close
    stream_seq = parsed.stream_seq
    raw_type = parsed.raw_type
    store = settings.store
    if not body:
        if not close:
            raise bad_request("an append needs a body (or Stream-Closed: true to close)")
        request = AppendRequest((), None, stream_seq, producer, True)
    else:
        if not raw_type:
            raise bad_request("an append with a body needs a Content-Type")
        content_type, json_mode = content_type_of(raw_type)
        if json_mode:
            try:
                messages = json_messages(body, allow_empty_array=False)
            except HttpError:
                # A closed stream or another content type outranks a bad body (§5.2 precedence).
                await _check_appendable(settings, path, content_type)
                raise
        else:
            messages = [body]
        request = AppendRequest(messages, content_type, stream_seq, producer, close)
    result = await store.append(path, request)
    headers: Headers = [next_offset_header(result.tail)]
    if result.closed:
        headers.append((b"stream-closed", b"true"))
    status = 204
    if producer is not None:
        headers.append((b"producer-epoch", str(result.producer_epoch).encode()))
        headers.append((b"producer-seq", str(result.producer_seq).encode()))
        if result.outcome == "appended":
            status = 200
    return answer(status, headers)


async def _check_appendable(settings: Settings, path: str, content_type: str) -> None:
    info = await settings.store.head(path)
    if info.closed:
        raise StreamClosed("stream is closed", tail=info.tail)
    if normalize_content_type(info.config.content_type) != normalize_content_type(content_type):
        raise ContentTypeMismatch(
            f"stream content type is {info.config.content_type}, request sent {content_type}"
        )


async def delete_answer(settings: Settings, path: str) -> Answer:
    """Delete the stream at ``path`` (soft-deleted while forks reference it, §4.2)."""
    await settings.store.delete(path)
    return answer(204, [])
