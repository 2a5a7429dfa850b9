"""A minimal incremental SSE reader for the load generator: lines in, (event, data) out.

Only what Durable Streams servers send is handled (``event:``, ``data:``, comments, blank-line
dispatch; PROTOCOL.md section 5.8); ``id:``/``retry:`` are ignored.
"""

from __future__ import annotations

__all__ = ["SSEReader"]


class SSEReader:
    """Feed one line at a time (with or without its line ending); complete events come back."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed_line(self, raw: bytes) -> tuple[str, str] | None:
        """Return ``(event, data)`` when ``raw`` is the blank line ending an event, else None."""
        line = raw.rstrip(b"\r\n").decode()
        if not line:
            if not self._data and not self._event:
                return None
            event = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None
