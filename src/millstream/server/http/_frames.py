"""Encoded SSE data frames shared by readers at the same position (PROTOCOL.md §5.8).

When one append wakes 1,000 SSE readers of a stream they all read the same messages; the first
encodes the ``event: data`` frame (JSON array, base64 for binary streams) and the rest reuse it.
One frame is kept per stream, the latest; the whole cache is bounded in entries and bytes.
"""

from __future__ import annotations

__all__ = ["FrameCache"]

_MAX_ENTRIES = 1024
_MAX_BYTES = 32 << 20  # frames held across all streams before the cache starts over


class FrameCache:
    def __init__(self) -> None:
        self._frames: dict[int, tuple[int, int, bytes]] = {}  # stream_id -> (start, next, frame)
        self._bytes = 0

    def get(self, stream_id: int, start: int, next_position: int) -> bytes | None:
        """The frame for messages ``[start, next_position)`` of ``stream_id``, if cached."""
        entry = self._frames.get(stream_id)
        if entry is not None and entry[0] == start and entry[1] == next_position:
            return entry[2]
        return None

    def put(self, stream_id: int, start: int, next_position: int, frame: bytes) -> None:
        old = self._frames.pop(stream_id, None)
        if old is not None:
            self._bytes -= len(old[2])
        if len(self._frames) >= _MAX_ENTRIES or self._bytes + len(frame) > _MAX_BYTES:
            self._frames.clear()
            self._bytes = 0
        if len(frame) <= _MAX_BYTES:
            self._frames[stream_id] = (start, next_position, frame)
            self._bytes += len(frame)
