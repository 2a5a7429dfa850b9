"""``Stream-Cursor`` values for CDN collapsing (PROTOCOL.md §10.1).

A cursor is the number of 20-second intervals since 2024-10-09T00:00:00Z. When a client echoes
a cursor that is not behind the clock, the answer jumps ahead by 1-3600 seconds of jitter so
cursors never repeat and cached empty answers cannot loop.
"""

from __future__ import annotations

import random
import time

__all__ = ["CURSOR_EPOCH", "CURSOR_INTERVAL_SECONDS", "current_interval", "response_cursor"]

CURSOR_EPOCH = 1728432000  # 2024-10-09T00:00:00Z, unix seconds
CURSOR_INTERVAL_SECONDS = 20
_MIN_JITTER_SECONDS = 1
_MAX_JITTER_SECONDS = 3600


def current_interval(now: float | None = None) -> int:
    moment = time.time() if now is None else now
    return int((moment - CURSOR_EPOCH) // CURSOR_INTERVAL_SECONDS)


def response_cursor(client_cursor: str | None, now: float | None = None) -> str:
    """The cursor to send back, strictly above ``client_cursor`` when that is not stale."""
    interval = current_interval(now)
    if client_cursor is None or not client_cursor.isdigit() or len(client_cursor) > 18:
        return str(interval)
    echoed = int(client_cursor)
    if echoed < interval:
        return str(interval)
    jitter = random.randint(_MIN_JITTER_SECONDS, _MAX_JITTER_SECONDS)
    return str(echoed + max(1, -(-jitter // CURSOR_INTERVAL_SECONDS)))
