"""A subscription's configuration: parsed from the PUT body, normalized, and hashed.

Re-confirming a subscription compares the SHA-256 of the normalized configuration (PROTOCOL.md
§6.2): ``type``, ``pattern``, the sorted unique ``streams``, the delivery target, the lease and
the description. Explicit streams added later through ``/streams`` do not change the hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ._errors import SubscriptionError
from ._glob import normalize_path
from ._urls import validate_webhook_url

__all__ = [
    "DEFAULT_LEASE_TTL_MS",
    "MAX_LEASE_TTL_MS",
    "MIN_LEASE_TTL_MS",
    "RESERVED_PREFIX",
    "SubscriptionConfig",
    "SubscriptionType",
    "is_reserved_path",
    "parse_config",
    "parse_stream_path",
]

SubscriptionType = Literal["webhook", "pull-wake"]

DEFAULT_LEASE_TTL_MS = 30_000  # §6.2 default lease
MIN_LEASE_TTL_MS = 1_000  # §6.2: from 1 second ...
MAX_LEASE_TTL_MS = 600_000  # ... to 10 minutes
MAX_PATH_LENGTH = 4096
MAX_DESCRIPTION_LENGTH = 4096
MAX_STREAMS = 10_000
RESERVED_PREFIX = "__ds"


def is_reserved_path(path: str) -> bool:
    """True for paths under the reserved ``__ds`` control namespace (§6)."""
    return path == RESERVED_PREFIX or path.startswith(RESERVED_PREFIX + "/")


def parse_stream_path(value: object, field: str) -> str:
    """A stream-root-relative path from a request body, normalized, or ``INVALID_REQUEST``."""
    if not isinstance(value, str):
        raise SubscriptionError("INVALID_REQUEST", f"{field} must be a string stream path")
    path = normalize_path(value)
    if not path or len(path) > MAX_PATH_LENGTH or "\x00" in path:
        raise SubscriptionError("INVALID_REQUEST", f"{field} must be a non-empty stream path")
    if is_reserved_path(path):
        raise SubscriptionError("INVALID_REQUEST", f"{field} may not name a reserved __ds path")
    return path


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    """What a client asked for; everything that takes part in the config hash."""

    type: SubscriptionType
    pattern: str | None
    streams: tuple[str, ...]  # sorted, unique
    webhook_url: str | None
    wake_stream: str | None
    lease_ttl_ms: int
    description: str | None

    def hash(self) -> str:
        canonical = {
            "type": self.type,
            "pattern": self.pattern,
            "streams": list(self.streams),
            "webhook": {"url": self.webhook_url} if self.webhook_url is not None else None,
            "wake_stream": self.wake_stream,
            "lease_ttl_ms": self.lease_ttl_ms,
            "description": self.description,
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "pattern": self.pattern,
            "streams": list(self.streams),
            "webhook_url": self.webhook_url,
            "wake_stream": self.wake_stream,
            "lease_ttl_ms": self.lease_ttl_ms,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubscriptionConfig:
        kind = data["type"]
        if kind not in ("webhook", "pull-wake"):
            raise ValueError(f"unknown subscription type {kind!r}")
        return cls(
            type=kind,
            pattern=data["pattern"],
            streams=tuple(data["streams"]),
            webhook_url=data["webhook_url"],
            wake_stream=data["wake_stream"],
            lease_ttl_ms=int(data["lease_ttl_ms"]),
            description=data["description"],
        )


def _parse_pattern(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SubscriptionError("INVALID_REQUEST", "pattern must be a string")
    pattern = normalize_path(value)
    if not pattern:
        return None
    if len(pattern) > MAX_PATH_LENGTH:
        raise SubscriptionError("INVALID_REQUEST", "pattern is too long")
    return pattern


def _parse_lease(value: object) -> int:
    if value is None:
        return DEFAULT_LEASE_TTL_MS
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_LEASE_TTL_MS <= value <= MAX_LEASE_TTL_MS
    ):
        raise SubscriptionError(
            "INVALID_REQUEST",
            f"lease_ttl_ms must be an integer from {MIN_LEASE_TTL_MS} to {MAX_LEASE_TTL_MS}",
        )
    return value


def parse_config(body: object) -> SubscriptionConfig:
    """Validate a create/re-confirm body (§6.2); raise ``SubscriptionError`` on bad input."""
    if not isinstance(body, dict):
        raise SubscriptionError("INVALID_REQUEST", "the request body must be a JSON object")
    kind = body.get("type")
    if kind not in ("webhook", "pull-wake"):
        raise SubscriptionError("INVALID_REQUEST", 'type must be "webhook" or "pull-wake"')
    pattern = _parse_pattern(body.get("pattern"))
    raw_streams = body.get("streams")
    if raw_streams is None:
        raw_streams = []
    if not isinstance(raw_streams, list) or len(raw_streams) > MAX_STREAMS:
        raise SubscriptionError("INVALID_REQUEST", "streams must be an array of stream paths")
    streams = tuple(sorted({parse_stream_path(s, "streams[]") for s in raw_streams}))
    if pattern is None and not streams:
        raise SubscriptionError("INVALID_REQUEST", "at least one of pattern or streams is required")
    lease = _parse_lease(body.get("lease_ttl_ms"))
    description = body.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH
    ):
        raise SubscriptionError("INVALID_REQUEST", "description must be a short string")
    webhook_url: str | None = None
    wake_stream: str | None = None
    if kind == "webhook":
        webhook = body.get("webhook")
        url = webhook.get("url") if isinstance(webhook, dict) else None
        if not isinstance(url, str) or not url:
            raise SubscriptionError("INVALID_REQUEST", "webhook subscriptions require webhook.url")
        webhook_url = validate_webhook_url(url)
    else:
        if body.get("wake_stream") is None:
            raise SubscriptionError(
                "INVALID_REQUEST", "pull-wake subscriptions require wake_stream"
            )
        wake_stream = parse_stream_path(body.get("wake_stream"), "wake_stream")
    return SubscriptionConfig(
        type=kind,
        pattern=pattern,
        streams=streams,
        webhook_url=webhook_url,
        wake_stream=wake_stream,
        lease_ttl_ms=lease,
        description=description,
    )
