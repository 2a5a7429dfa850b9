"""Frame buffer: bytes of any size in, whole size-prefixed Kafka frames out.

Every Kafka request and response is ``int32 size`` followed by ``size`` bytes. The buffer
checks the size as soon as its four bytes arrive, so a hostile or confused peer cannot make
it hold more than ``max_frame_size`` bytes of one frame.
"""

from __future__ import annotations

import struct
from typing import Final

from ._errors import FrameError, FrameTooLarge, InvalidFrameSize

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "FrameBuffer"]

DEFAULT_MAX_FRAME_SIZE: Final = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes default

_SIZE = struct.Struct(">i")


class FrameBuffer:
    """Turns chunks from a socket into frames (the bytes after each size prefix).

    >>> frames = FrameBuffer(max_frame_size=1024)
    >>> frames.feed(b"\\x00\\x00\\x00\\x03ab")
    []
    >>> frames.feed(b"c\\x00\\x00\\x00\\x01z\\x00")
    [b'abc', b'z']
    >>> frames.buffered
    1

    A size above ``max_frame_size`` raises ``FrameTooLarge``, a negative one
    ``InvalidFrameSize``; after either, every ``feed`` raises it again (close the connection).
    """

    __slots__ = ("_buf", "_error", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise ValueError("max_frame_size must not be negative")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for frames not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every frame now complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        if buf:
            buf += data
            source: bytes | bytearray | memoryview = buf
        else:
            source = data  # nothing pending: cut frames straight out of the chunk
        frames: list[bytes] = []
        pos = 0
        end_of_data = len(source)
        limit = self.max_frame_size
        while end_of_data - pos >= 4:
            (size,) = _SIZE.unpack_from(source, pos)
            if size < 0 or size > limit:
                self._error = self._size_error(size)
                buf.clear()
                raise self._error
            end = pos + 4 + size
            if end > end_of_data:
                break
            # one copy: a bytearray slice would be a copy of its own before bytes() made another
            frames.append(bytes(memoryview(source)[pos + 4 : end]))
            pos = end
        if source is buf:
            if pos:
                del buf[:pos]
        elif pos < end_of_data:
            buf += source[pos:]
        return frames

    def _size_error(self, size: int) -> FrameError:
        if size < 0:
            return InvalidFrameSize(f"negative frame size {size}", size)
        return FrameTooLarge(
            f"frame of {size} bytes exceeds the maximum of {self.max_frame_size}", size
        )
