"""Durable Streams offsets: fixed-width strings that sort like the positions they name.

An offset names a position *between* messages: ``position`` is the Kafka offset of the next
message (so the stream start is position 0 and the tail is the message count). The text form is
``"%016d_%016d" % (position, 0)``; the second field is reserved (always zero today) so a later
version can address inside a message without changing the sort order. The all-zero start offset
is what the published conformance suite hard-codes, so keep the format.
"""

from __future__ import annotations

import re

__all__ = ["MAX_POSITION", "OFFSET_BEGINNING", "OFFSET_NOW", "format_offset", "parse_offset"]

OFFSET_BEGINNING = "-1"
OFFSET_NOW = "now"
MAX_POSITION = 9_999_999_999_999_999

_OFFSET_RE = re.compile(r"\A([0-9]{16})_([0-9]{16})\Z")


def format_offset(position: int) -> str:
    """Return the offset text for ``position`` (the Kafka offset of the next message)."""
    return f"{position:016d}_0000000000000000"


def parse_offset(text: str) -> int | None:
    """Return the position an offset names, or ``None`` if ``text`` is not a well-formed offset.

    Sentinels (``-1``, ``now``) are not handled here; callers treat them first.
    """
    match = _OFFSET_RE.match(text)
    if match is None:
        return None
    position, reserved = match.groups()
    if reserved != "0000000000000000":
        return None
    return int(position)
