"""A bounded on-disk FIFO of serialized events, kept while the broker is unreachable.

Layout: a directory of segment files ``<time_ns>-<pid>-<n>.seg``, each the magic ``MSSPOOL1``
followed by records ``[u32 length][u32 crc32][payload]`` (big-endian). Several processes may
share one directory: a segment is written under an exclusive ``flock`` held by its writer, and
replayed by whoever manages to lock it once sealed, so a segment is never replayed twice at once
and a crashed writer's segments are picked up by the next process. A torn or corrupt tail (a
crash mid-write) ends that segment's records. Records reach the OS on every append (no fsync:
the spool rides out broker outages, not power loss). The byte bound counts every segment in the
directory, rescanned on each claim; appends past it are refused, and the caller counts them as
dropped.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

__all__ = ["ClaimedSegment", "Spool"]

log = logging.getLogger("millstream.telemetry")

MAGIC = b"MSSPOOL1"
_HEADER = struct.Struct(">II")
SEGMENT_BYTES = 1 << 20  # roll to a new segment past this size


def _lock(handle: BinaryIO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_records(data: bytes) -> tuple[list[bytes], bool]:
    """The records of one segment's bytes, and whether they all checked out."""
    if not data.startswith(MAGIC):
        return [], False
    records: list[bytes] = []
    position = len(MAGIC)
    end = len(data)
    while position < end:
        if position + _HEADER.size > end:
            return records, False
        length, crc = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return records, False
        records.append(payload)
        position = start + length
    return records, True


class ClaimedSegment:
    """A sealed segment locked for replay: read ``records``, then ``done()`` (delete) or
    ``release()`` (leave it for later)."""

    def __init__(self, spool: Spool, path: Path, handle: BinaryIO, records: list[bytes]) -> None:
        self._spool = spool
        self.path = path
        self._handle = handle
        self.records = records

    def done(self) -> None:
        size = self.path.stat().st_size if self.path.exists() else 0
        self.path.unlink(missing_ok=True)
        self._handle.close()
        self._spool._forget(size)

    def release(self) -> None:
        self._handle.close()


class Spool:
    """The spool in ``directory``, at most ``max_bytes`` on disk. Thread-safe."""

    def __init__(self, directory: Path, max_bytes: int, *, segment_bytes: int = SEGMENT_BYTES):
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._writer: BinaryIO | None = None
        self._writer_path: Path | None = None
        self._writer_size = 0
        self._names = itertools.count()
        directory.mkdir(parents=True, exist_ok=True)
        self._bytes = self._scan()

    def _scan(self) -> int:
        total = 0
        for path in self.directory.glob("*.seg"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    @property
    def size(self) -> int:
        """Bytes on disk as last counted (this process's appends included)."""
        return self._bytes

    def has_segments(self) -> bool:
        """True when any segment exists (sealed or being written, by any process)."""
        return any(self.directory.glob("*.seg"))

    def append(self, payloads: Sequence[bytes]) -> int:
        """Write ``payloads`` in order; returns how many fit under the bound (a prefix)."""
        with self._lock:
            written = 0
            for payload in payloads:
                size = _HEADER.size + len(payload)
                if self._bytes + size > self.max_bytes:
                    break
                writer = self._ensure_writer()
                writer.write(_HEADER.pack(len(payload), zlib.crc32(payload)))
                writer.write(payload)
                self._writer_size += size
                self._bytes += size
                written += 1
                if self._writer_size >= self.segment_bytes:
                    self._seal()
            if self._writer is not None:
                self._writer.flush()
            return written

    def _ensure_writer(self) -> BinaryIO:
        if self._writer is None:
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._names):06d}"
            temporary = self.directory / f"{name}.tmp"
            handle = temporary.open("xb")
            _lock(handle)  # a fresh file: nobody else can hold it
            handle.write(MAGIC)
            final = self.directory / f"{name}.seg"
            temporary.rename(final)
            self._writer, self._writer_path = handle, final
            self._writer_size = len(MAGIC)
            self._bytes += len(MAGIC)
        return self._writer

    def _seal(self) -> None:
        if self._writer is not None:
            self._writer.close()  # closing releases the lock: the segment may now be replayed
        self._writer = None
        self._writer_path = None
        self._writer_size = 0

    def claim_oldest(self) -> ClaimedSegment | None:
        """Lock and read the oldest sealed segment (sealing this process's own segment first
        when it is the oldest left), or ``None`` when there is nothing to replay."""
        with self._lock:
            self._bytes = self._scan()
            for path in sorted(self.directory.glob("*.seg")):
                if path == self._writer_path:
                    self._seal()
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    continue
                if not _lock(handle):
                    handle.close()
                    continue
                if not path.exists():  # replayed and deleted before we got the lock
                    handle.close()
                    continue
                records, intact = read_records(handle.read())
                if not intact:
                    log.warning("spool segment %s has a torn or corrupt tail", path.name)
                return ClaimedSegment(self, path, handle, records)
            return None

    def _forget(self, size: int) -> None:
        with self._lock:
            self._bytes = max(0, self._bytes - size)

    def close(self) -> None:
        with self._lock:
            self._seal()
