"""What the Sentinel accepts (the SDK's schema plus the reference core's limits) and how it
masks personal data in what it shows back (REST answers, dead letters).

Limits: latency at most 600 s, prompt plus response tokens at most 128,000, cost at most $100.
Masking replaces e-mail addresses, US social security numbers, card-like and other long digit
runs, and drops metadata entries whose key names a secret (``api_key``, ``password``, ...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from millstream.telemetry import TelemetryEvent, ValidationError

from ._detectors import Call

__all__ = [
    "MAX_COST_USD",
    "MAX_LATENCY_MS",
    "MAX_TOTAL_TOKENS",
    "check_limits",
    "fast_call",
    "mask_pii",
    "parse_call",
    "parse_event",
    "sanitized",
]

MAX_LATENCY_MS = 600_000.0
MAX_TOTAL_TOKENS = 128_000
MAX_COST_USD = 100.0

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_LONG_DIGITS = re.compile(r"\b\d(?:[ -]?\d){8,18}\b")  # cards, phone and account numbers
# metadata keys that name a credential: the whole key, or its last part (``openai_api_key``)
_SECRET_KEYS = re.compile(
    r"(?:^|[_.-])(?:api[_-]?key|password|passwd|secret|secret[_-]key|private[_-]key|"
    r"token|access[_-]token|auth[_-]token|refresh[_-]token|authorization)$",
    re.I,
)


def check_limits(event: TelemetryEvent) -> None:
    """``ValidationError`` for values the reference core refuses as implausible."""
    if event.latency_ms > MAX_LATENCY_MS:
        raise ValidationError(f"latency_ms {event.latency_ms} exceeds {MAX_LATENCY_MS:.0f}")
    total = event.total_tokens()
    if total > MAX_TOTAL_TOKENS:
        raise ValidationError(f"total tokens {total} exceed {MAX_TOTAL_TOKENS}")
    if event.cost_usd > MAX_COST_USD:
        raise ValidationError(f"cost_usd {event.cost_usd} exceeds {MAX_COST_USD:.0f}")


def validate(data: Any) -> TelemetryEvent:
    """An event from a parsed JSON value, schema and limits checked."""
    event = TelemetryEvent.from_dict(data)
    check_limits(event)
    return event


def parse_event(payload: bytes) -> TelemetryEvent:
    """An event from its wire bytes; ``ValidationError`` says what is wrong."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from None
    return validate(data)


def parse_call(payload: bytes) -> Call:
    """What the detectors need of an event, from its wire bytes, validated exactly as
    ``parse_event`` validates (``ValidationError`` with the same reason otherwise).

    The hot path: ``fast_call`` checks a well-formed event without building dataclasses; any
    event it is not sure about goes through ``parse_event`` for the verdict and the reason.
    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from None
    call = fast_call(data)
    return call if call is not None else Call.of(validate(data))


_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
_MAX_TEXT = 100_000


def fast_call(data: Any) -> Call | None:
    """A ``Call`` for a plainly valid event (the common case), ``None`` for anything else: the
    caller then decides with the full validation. Never accepts what ``validate`` refuses."""
    if type(data) is not dict:
        return None
    get = data.get
    service, model = get("service_name"), get("model")
    prompt, response = get("prompt"), get("response")
    latency, cost = get("latency_ms"), get("cost_usd")
    stamp, event_id = get("timestamp"), get("event_id")
    if (
        type(service) is not str
        or not service
        or type(model) is not str
        or not model
        or type(prompt) is not dict
        or type(response) is not dict
        or type(stamp) is not str
        or type(event_id) is not str
        or _CANONICAL_UUID.match(event_id) is None
    ):
        return None
    prompt_tokens, response_tokens = prompt.get("tokens"), response.get("tokens")
    prompt_text, response_text = prompt.get("text"), response.get("text")
    if (
        type(prompt_tokens) is not int
        or type(response_tokens) is not int
        or prompt_tokens < 0
        or response_tokens < 0
        or prompt_tokens + response_tokens > MAX_TOTAL_TOKENS
        or type(prompt_text) is not str
        or type(response_text) is not str
        or len(prompt_text) > _MAX_TEXT
        or len(response_text) > _MAX_TEXT
        or type(response.get("finish_reason")) is not str
        or prompt.get("embedding") is not None
        or response.get("embedding") is not None
    ):
        return None
    kinds = (int, float)
    if type(latency) not in kinds or type(cost) not in kinds:
        return None
    latency_ms, cost_usd = float(latency), float(cost)  # type: ignore[arg-type]
    if not (0 <= latency_ms <= MAX_LATENCY_MS) or not (0 <= cost_usd <= MAX_COST_USD):
        return None  # NaN fails both comparisons
    metadata, errors = get("metadata"), get("errors")
    trace_id, span_id = get("trace_id"), get("span_id")
    if metadata is None:
        metadata = {}
    elif type(metadata) is not dict or any(type(v) is not str for v in metadata.values()):
        return None
    if errors is None:
        errors = ()
    elif type(errors) is not list or any(type(e) is not str for e in errors):
        return None
    if (trace_id is not None and type(trace_id) is not str) or (
        span_id is not None and type(span_id) is not str
    ):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return Call(
        service,
        model,
        latency_ms,
        float(prompt_tokens + response_tokens),
        cost_usd,
        1 if errors else 0,
        when,
        trace_id,
        metadata,
        event_id.lower(),
    )


def mask_pii(text: str) -> str:
    if not text:
        return text
    text = _EMAIL.sub("[EMAIL_REDACTED]", text)
    text = _SSN.sub("[SSN_REDACTED]", text)
    return _LONG_DIGITS.sub("[NUMBER_REDACTED]", text)


def sanitized(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wire-format event with personal data masked and secrets dropped."""
    out = dict(event)
    for part in ("prompt", "response"):
        section = out.get(part)
        if isinstance(section, dict) and isinstance(section.get("text"), str):
            out[part] = {**section, "text": mask_pii(section["text"])}
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: v for k, v in metadata.items() if not _SECRET_KEYS.search(str(k))}
    return out
