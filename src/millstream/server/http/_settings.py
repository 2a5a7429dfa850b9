"""What one HTTP app instance is configured with, shared by every handler."""

from __future__ import annotations

from dataclasses import dataclass, field

from millstream.log import Store, StreamConfig

from ._frames import FrameCache

__all__ = ["DEFAULT_MAX_BODY_SIZE", "STREAM_PREFIX", "Settings"]

STREAM_PREFIX = "/v1/stream/"
DEFAULT_MAX_BODY_SIZE = 64 << 20  # 64 MiB: a generous single append, still bounded in memory


@dataclass(frozen=True, slots=True)
class Settings:
    store: Store
    long_poll_timeout: float = 30.0  # seconds a long-poll (or an idle SSE slice) waits
    max_body_size: int = DEFAULT_MAX_BODY_SIZE  # bytes; larger bodies get 413
    sse_reconnect_seconds: float = 60.0  # SSE responses end after about this long (§10.2)
    #: Configuration by stream id: ids are never reused and a stream's config never changes,
    #: so reads need no extra ``head`` call to learn the content type. Cleared when large.
    configs: dict[int, StreamConfig] = field(default_factory=dict)
    #: The latest encoded SSE data frame per stream, shared by readers at the same position.
    sse_frames: FrameCache = field(default_factory=FrameCache)
