"""Glob patterns over stream-root-relative paths (PROTOCOL.md §6.2).

``*`` matches exactly one path segment, ``**`` matches zero or more; every other segment is
literal. Paths and patterns are compared segment by segment after trimming slashes.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["glob_match", "normalize_path"]


def normalize_path(path: str) -> str:
    """Strip leading and trailing slashes: ``"/events/a/"`` → ``"events/a"``."""
    return path.strip("/")


@lru_cache(maxsize=1024)
def _segments(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split("/") if part)


def glob_match(pattern: str, path: str) -> bool:
    """True if ``path`` matches ``pattern``."""
    return _match(_segments(pattern), 0, _segments(path), 0)


def _match(pattern: tuple[str, ...], pi: int, path: tuple[str, ...], si: int) -> bool:
    while pi < len(pattern):
        segment = pattern[pi]
        if segment == "**":
            # Collapse runs of ``**``, then try every split of the remaining path.
            while pi < len(pattern) and pattern[pi] == "**":
                pi += 1
            if pi == len(pattern):
                return True
            return any(_match(pattern, pi, path, start) for start in range(si, len(path) + 1))
        if si == len(path) or (segment != "*" and segment != path[si]):
            return False
        pi += 1
        si += 1
    return si == len(path)
