"""What the Sentinel accepts (the SDK's schema plus the reference core's limits) and how it
masks personal data in what it shows back (REST answers, dead letters).

Limits: latency at most 600 s, prompt plus response tokens at most 128,000, cost at most $100.
Masking replaces e-mail addresses, US social security numbers, card-like and other long digit
runs, and drops metadata entries whose key names a secret (``api_key``, ``password``, ...).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from millstream.telemetry import TelemetryEvent, ValidationError

__all__ = [
    "MAX_COST_USD",
    "MAX_LATENCY_MS",
    "MAX_TOTAL_TOKENS",
    "check_limits",
    "mask_pii",
    "parse_event",
    "sanitized",
]

MAX_LATENCY_MS = 600_000.0
MAX_TOTAL_TOKENS = 128_000
MAX_COST_USD = 100.0

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_LONG_DIGITS = re.compile(r"\b\d(?:[ -]?\d){8,18}\b")  # cards, phone and account numbers
_SECRET_KEYS = re.compile(r"api[_-]?key|password|passwd|secret|token|authorization", re.I)


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
