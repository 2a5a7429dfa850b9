"""What the LLM client and the gateway service agree on beyond the seed's JSON: headers, the
SSE event id of a generation, and the records of a generation's durable stream.

The service imports these (DESIGN.md: a shape shared by an SDK and a service lives in the SDK).

A generation's stream holds one JSON record per message, in order:

- ``{"type": "start", "id", "model", "provider", "provider_model", "created"}`` at position 0;
- ``{"type": "delta", "text"}`` for each run of tokens as they arrived from the provider;
- one terminal ``{"type": "end", "status", "finish_reason", "usage", "cost", "error"}``, with
  ``status`` one of ``TERMINAL_STATUSES``; the stream is closed with it.

An SSE event sent for the record at position ``n`` carries ``id: <generation>:<n + 1>``: the
position to read from next. A reconnect that sends it back as ``Last-Event-ID`` gets the rest.
"""

from __future__ import annotations

import re

__all__ = [
    "GENERATION_HEADER",
    "IDEMPOTENCY_KEY_HEADER",
    "LAST_EVENT_ID_HEADER",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "RESUME_URL_HEADER",
    "TERMINAL_STATUSES",
    "event_id",
    "is_generation_id",
    "parse_event_id",
]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
LAST_EVENT_ID_HEADER = "Last-Event-ID"
#: The generation a response belongs to.
GENERATION_HEADER = "x-millstream-generation"
#: A URL (path and query, relative to the gateway) that replays the generation's events;
#: a GET of it with ``Last-Event-ID`` resumes (what a browser's ``EventSource`` does).
RESUME_URL_HEADER = "x-millstream-resume-url"
MAX_IDEMPOTENCY_KEY_LENGTH = 255

TERMINAL_STATUSES = ("completed", "cancelled", "failed", "timed_out")

_GENERATION_ID = re.compile(r"\Agen-[0-9a-f]{32}\Z")


def event_id(generation: str, next_position: int) -> str:
    """The SSE ``id`` of an event after which a reader resumes at ``next_position``."""
    return f"{generation}:{next_position}"


def parse_event_id(value: str) -> tuple[str, int] | None:
    """``(generation, position)`` from a ``Last-Event-ID``, or ``None`` if it is not ours."""
    generation, colon, position = value.strip().rpartition(":")
    if not colon or not _GENERATION_ID.match(generation) or not position.isdigit():
        return None
    if len(position) > 18:
        return None
    return generation, int(position)


def is_generation_id(value: str) -> bool:
    """True for ``gen-`` followed by 32 lowercase hex digits."""
    return _GENERATION_ID.match(value) is not None
