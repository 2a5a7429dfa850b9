"""Frame buffer: bytes of any size in, whole size-prefixed Kafka frames out.

Every Kafka request and response is ``int32 size`` followed by ``size`` bytes. The buffer
checks the size as soon as its four bytes arrive, so a hostile or confused peer cannot make
it hold more than ``max_frame_size`` bytes of one frame.

Two ways in, the same frames out: ``feed(chunk)`` for bytes someone else read, or ``buffer()``
then ``written(n)`` for a socket that reads straight into the buffer (``asyncio.BufferedProtocol``).
The second copies a frame once, from the buffer into the frame handed out, however the socket
cuts it: a 1 MB produce request read in 64 KiB pieces through ``feed`` is copied three times
(into a bytes object per read, into the buffer, out into the frame).
"""

from __future__ import annotations

import struct
from typing import Final

from ._errors import FrameError, FrameTooLarge, InvalidFrameSize

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "FrameBuffer"]

DEFAULT_MAX_FRAME_SIZE: Final = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes default

_SIZE = struct.Struct(">i")
#: Room offered to each read when no large frame is pending: many small frames per read.
READ_SIZE: Final = 64 * 1024
#: Room made at once for a large frame whose size is known; beyond it the room doubles as bytes
#: arrive, so a peer that announces a huge frame and sends nothing does not get it allocated.
_AHEAD: Final = 1024 * 1024
#: A buffer grown past this for one large frame is let go once it is empty again.
_KEEP: Final = 8 * 1024 * 1024


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

    __slots__ = ("_buf", "_end", "_error", "_start", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 0:
            raise ValueError("max_frame_size must not be negative")
        self.max_frame_size = max_frame_size
        # Bytes [_start, _end) of _buf are received and not yet cut into frames. The bytearray
        # is never resized (a reader may still hold a view of it): growing replaces it.
        self._buf = bytearray(READ_SIZE)
        self._start = 0
        self._end = 0
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for frames not yet complete."""
        return self._end - self._start

    def buffer(self) -> memoryview:
        """Free space to read the next bytes into; then call ``written`` with how many came.

        The space holds the rest of the frame in progress (up to ``_AHEAD`` bytes, or as much
        as it holds already), so a large frame is read straight into place, and at least
        ``READ_SIZE`` bytes otherwise.
        """
        if self._error is not None:
            raise self._error
        start, end = self._start, self._end
        held = end - start
        need = READ_SIZE
        if held >= 4:
            (size,) = _SIZE.unpack_from(self._buf, start)  # checked by written() already
            need = max(need, min(4 + size - held, max(_AHEAD, held)))
        if len(self._buf) - end < need:
            self._make_room(need)
        return memoryview(self._buf)[self._end :]

    def _make_room(self, need: int) -> None:
        start, end = self._start, self._end
        held = end - start
        if held + need <= len(self._buf):
            self._buf[:held] = self._buf[start:end]  # slide the pending bytes down
        else:
            grown = bytearray(max(held + need, READ_SIZE))
            grown[:held] = self._buf[start:end]
            self._buf = grown
        self._start, self._end = 0, held

    def written(self, nbytes: int) -> list[bytes]:
        """``nbytes`` were read into the last ``buffer()``; return every frame now complete."""
        self._end += nbytes
        buf, pos, end = self._buf, self._start, self._end
        frames: list[bytes] = []
        limit = self.max_frame_size
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 0 or size > limit:
                self._error = self._size_error(size)
                self._start = self._end = 0
                raise self._error
            stop = pos + 4 + size
            if stop > end:
                break
            # one copy: a bytearray slice would be a copy of its own before bytes() made another
            frames.append(bytes(memoryview(buf)[pos + 4 : stop]))
            pos = stop
        if pos == end:
            pos = end = 0
            if len(buf) > _KEEP:
                self._buf = bytearray(READ_SIZE)
        self._start, self._end = pos, end
        return frames

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every frame now complete, in order."""
        frames: list[bytes] = []
        view = memoryview(data).cast("B")
        while True:
            room = self.buffer()
            n = min(len(room), len(view))
            room[:n] = view[:n]
            frames += self.written(n)
            view = view[n:]
            if not view:
                return frames

    def _size_error(self, size: int) -> FrameError:
        if size < 0:
            return InvalidFrameSize(f"negative frame size {size}", size)
        return FrameTooLarge(
            f"frame of {size} bytes exceeds the maximum of {self.max_frame_size}", size
        )
