"""Large Kafka record batches of ``SqliteStore`` in append-only batch files beside the database.

Why: SQLite keeps a BLOB larger than about a quarter of a page in a chain of overflow pages,
each written as a WAL frame, copied again by the checkpoint and read back page by page.
Measured (``benchmarks/store_produce.py``, 1,000 records of 1 KiB per batch) that costs about
7 ms of CPU per MB written and 7 ms per MB read, where writing the same bytes to a file costs
well under 1 ms and ``pread`` from the page cache about 0.1 ms. So a batch of at least
``EXTERNAL_MIN`` bytes goes to the current batch file (``batches/<id>.batches``) and its row in
``messages`` keeps ``(file, pos, size)`` instead of the bytes; smaller batches stay in the row.

Durability (``fsync="always"`` and ``"interval"``): the writer writes a batch's bytes and
fdatasyncs the file **before** the COMMIT that references them, so a committed row never
points at bytes a power cut could take away; the WAL fsync after the COMMIT then covers the
row as before. A new batch file's directory entry is fsynced before its first use.

Space: the ``batch_files`` table counts each file's live rows and how far it is written
(``end_pos``, committed with the rows). A file other than the one being written is deleted
once its last row is gone (deleted stream, DeleteRecords, expiry), after the commit that
removed that row is durable. Until then it keeps the bytes of its deleted batches too: space
comes back a whole file (``MAX_FILE_BYTES``) at a time.

Recovery, when the store opens: the file being written is cut back to ``end_pos`` (bytes
written for a commit that never happened), and files the table does not know, or knows with no
live rows, are removed.

Threads: the writer thread alone writes, syncs and deletes; readers (the event loop, worker
threads) ``read`` concurrently. A reader holds a file's descriptor only inside ``read``, and
a deleted file's descriptor is closed by whoever releases it last.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ._errors import StorageError

__all__ = ["EXTERNAL_MIN", "FILES_DIR", "MAX_FILE_BYTES", "BatchFiles"]

FILES_DIR = "batches"
#: Batches of at least this many bytes go to a batch file; SQLite's b-tree keeps at most
#: about a quarter of a 4 KiB page in the row itself, so larger ones would overflow anyway.
EXTERNAL_MIN = 4096
#: A batch file is closed for writing past this size; space returns a file at a time.
MAX_FILE_BYTES = 128 << 20
_IOV_MAX = 1024  # buffers per writev (Linux's IOV_MAX)

Buffer = bytes | memoryview


class _Reader:
    """A read-only descriptor and how many ``read`` calls use it right now."""

    __slots__ = ("dead", "fd", "users")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.dead = False


class BatchFiles:
    """The batch files of one store (see the module docstring)."""

    def __init__(
        self, directory: Path, *, min_size: int = EXTERNAL_MIN, max_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self.directory = directory
        self.min_size = min_size  # batches this large or larger are kept here
        self.max_bytes = max_bytes
        self.live: dict[int, int] = {}  # committed live rows per file
        self.active = 0  # the file being written (0: none yet)
        self.end = 0  # committed bytes of the active file
        self._fd = -1  # the active file, opened for writing
        self._pending: list[Buffer] = []  # staged for this commit, not yet written
        self._written = 0  # bytes in the active file (committed, plus this commit's)
        self._new: set[int] = set()  # files created by this commit
        self._deltas: dict[int, int] = {}  # live-row changes of this commit
        self._dirty = False  # this commit wrote bytes that need a sync
        self._doomed: list[int] = []  # no live rows left, to delete once that is durable
        self._readers: dict[int, _Reader] = {}
        self._lock = threading.Lock()
        self.deleted = 0
        self.sync_file = os.fdatasync  # tests inject I/O errors here

    def path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.batches"

    # -- opening -------------------------------------------------------------------------------

    def open(self, conn: sqlite3.Connection) -> None:
        """Load the table, cut the active file back to its committed end, remove leftovers."""
        try:
            fresh = not self.directory.exists()
            self.directory.mkdir(exist_ok=True)
            if fresh:
                _sync_directory(self.directory.parent)
            rows = conn.execute("SELECT id, live, end_pos FROM batch_files").fetchall()
            if rows:
                self.active, _, self.end = max(rows)
            self.live = {file: live for file, live, _ in rows if live or file == self.active}
            for name in os.listdir(self.directory):
                file = _file_id(name)
                if file != self.active and (file is None or not self.live.get(file)):
                    os.unlink(self.directory / name)
            if self.active:
                self._fd = os.open(self.path(self.active), os.O_WRONLY | os.O_CREAT, 0o644)
                os.ftruncate(self._fd, self.end)
                self._written = self.end
        except OSError as exc:
            raise StorageError(f"cannot open the batch files in {self.directory}: {exc}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        with self._lock:
            for reader in self._readers.values():
                reader.dead = True
                if not reader.users:
                    os.close(reader.fd)
            self._readers.clear()

    # -- the writer thread: one commit at a time ------------------------------------------------

    def stage(self, parts: Sequence[Buffer], size: int) -> tuple[int, int]:
        """Place ``size`` bytes (``parts`` end to end) in this commit; returns ``(file, pos)``."""
        if not self.active or (self._written > 0 and self._written + size > self.max_bytes):
            self._roll()
        position = self._written
        self._pending.extend(parts)
        self._written += size
        self._deltas[self.active] = self._deltas.get(self.active, 0) + 1
        return self.active, position

    def _roll(self) -> None:
        """Start a new file: write out what is staged for the old one, switch files."""
        self.write()
        file = self.active + 1
        fd = os.open(self.path(file), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        _sync_directory(self.directory)  # the new file's name is durable before it is used
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self.active, self._written = fd, file, 0
        self._new.add(file)

    def write(self) -> None:
        """Write the staged bytes into the active file (no sync)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._dirty = True
        start = self._written - sum(map(len, pending))
        for first in range(0, len(pending), _IOV_MAX):
            chunk = pending[first : first + _IOV_MAX]
            total = sum(map(len, chunk))
            done = os.pwritev(self._fd, chunk, start)
            while done < total:  # a short write: go on from where it stopped
                rest = b"".join(bytes(b) for b in chunk)[done:]
                done += os.pwrite(self._fd, rest, start + done)
            start += total

    def sync(self) -> None:
        """Make this commit's file bytes durable (before its COMMIT)."""
        if self._dirty:
            self.sync_file(self._fd)

    def release(self, file: int, rows: int) -> None:
        """``rows`` rows of ``file`` are deleted by this commit."""
        self._deltas[file] = self._deltas.get(file, 0) - rows

    def save(self, conn: sqlite3.Connection) -> None:
        """Write this commit's file rows (inside its transaction, before the COMMIT)."""
        for file, delta in self._deltas.items():
            if file in self._new:
                conn.execute(
                    "INSERT INTO batch_files (id, live, end_pos) VALUES (?, ?, ?)",
                    (file, delta, self._written if file == self.active else 0),
                )
            else:
                conn.execute("UPDATE batch_files SET live = live + ? WHERE id = ?", (delta, file))
        if self.active not in self._new and self._written != self.end:
            conn.execute(
                "UPDATE batch_files SET end_pos = ? WHERE id = ?", (self._written, self.active)
            )
        for file in self._new - self._deltas.keys():  # rolled past without a row in it
            conn.execute("INSERT INTO batch_files (id, live, end_pos) VALUES (?, 0, 0)", (file,))

    def committed(self) -> None:
        """The COMMIT succeeded: this commit's changes are the new committed state."""
        for file, delta in self._deltas.items():
            self.live[file] = self.live.get(file, 0) + delta
        for file in self._new:
            self.live.setdefault(file, 0)
        for file, live in self.live.items():
            if not live and file != self.active:
                self._doomed.append(file)
        for file in self._doomed:
            self.live.pop(file, None)
        self.end = self._written
        self._reset()

    def rolled_back(self) -> None:
        """The COMMIT failed: forget this commit's bytes (they are overwritten next time)."""
        if self._new:
            # Stay on the newest file, empty: its table row is missing, so save() adds it.
            keep = self.active
            self._reset()
            self._new = {keep}
            self._written = 0
            self.end = 0
            self.live.pop(keep, None)
            return
        self._written = self.end
        self._reset()

    def _reset(self) -> None:
        self._pending = []
        self._deltas = {}
        self._new = set()
        self._dirty = False

    def take_doomed(self) -> list[int]:
        """Files left with no rows by commits since the last call."""
        doomed, self._doomed = self._doomed, []
        return doomed

    def delete(self, files: Sequence[int]) -> None:
        """Remove batch files whose last row's removal is durable."""
        for file in files:
            with self._lock:
                reader = self._readers.pop(file, None)
                if reader is not None:
                    reader.dead = True
                    if not reader.users:
                        os.close(reader.fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(file))
            self.deleted += 1

    # -- readers: any thread --------------------------------------------------------------------

    def read(self, file: int, position: int, size: int) -> bytes:
        """The ``size`` bytes at ``position`` of ``file`` (committed bytes only)."""
        with self._lock:
            reader = self._readers.get(file)
            if reader is None:
                try:
                    fd = os.open(self.path(file), os.O_RDONLY)
                except OSError as exc:
                    raise StorageError(f"cannot open {self.path(file)}: {exc}") from exc
                reader = self._readers[file] = _Reader(fd)
            reader.users += 1
        try:
            data = os.pread(reader.fd, size, position)
        except OSError as exc:
            raise StorageError(f"cannot read {self.path(file)}: {exc}") from exc
        finally:
            with self._lock:
                reader.users -= 1
                if reader.dead and not reader.users:
                    os.close(reader.fd)
        if len(data) != size:
            raise StorageError(
                f"{self.path(file)} ends before the {size} bytes at {position} it should hold"
            )
        return data

    def statistics(self) -> dict[str, int]:
        return {"files": len(self.live), "active": self.active, "deleted": self.deleted}


def _file_id(name: str) -> int | None:
    stem, dot, suffix = name.partition(".")
    return int(stem) if dot and suffix == "batches" and stem.isdigit() else None


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
