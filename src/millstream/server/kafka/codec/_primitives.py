"""Value types shared by the generated messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from uuid import UUID

__all__ = ["ZERO_UUID", "RecordData"]

ZERO_UUID: Final = UUID(int=0)
"""Kafka's "no topic id" (``Uuid.ZERO_UUID``): what millstream answers wherever an id goes."""

RecordData = bytes | memoryview | Sequence[bytes | memoryview]
"""Record batches in a response: one buffer, or several written one after another without
being joined (``encode_response`` hands them to ``writelines`` as separate chunks).
Record batches in a decoded request are a ``memoryview`` of the request frame (no copy)."""
