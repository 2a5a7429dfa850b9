"""``fsync="always"``: make committed batches durable on a second thread (pipelined commit).

The writer thread commits each batch with ``synchronous=NORMAL``: in WAL mode the COMMIT only
writes the batch's frames to the ``-wal`` file and returns, with no fsync ("Writers sync the
WAL on every transaction commit if PRAGMA synchronous is set to FULL but omit this sync if
PRAGMA synchronous is set to NORMAL", https://sqlite.org/wal.html). If other jobs are already
waiting, it hands the batch to the ``WalSyncer`` here and goes on to build and commit the next
batch; the syncer takes every batch handed over so far, calls ``fsync`` on its own descriptor
of the ``-wal`` file, and only then publishes those batches (in-memory states, tail cache,
live-reader wake-ups) and answers their callers. So the next batch's CPU work overlaps the
previous batch's fsync. If nothing is waiting and no fsync is in flight, the writer runs the
same fsync-then-publish itself (``sync_inline``): there is nothing to overlap, and waking a
second thread would only add a hand-off to the latency.

Why an acknowledged batch is on disk:

1. A batch is handed over (or synced inline) only after its COMMIT returned, i.e. after
   SQLite's ``write()`` of its frames into the ``-wal`` file returned; the syncer takes the
   batch *before* it starts the fsync. fsync(2) (we call fdatasync(2), which SQLite uses too:
   it skips only metadata not needed to read the data back) makes durable everything written
   to the file (the inode: any descriptor will do) before the call, so a batch's frames are
   on disk once an fsync that started after its COMMIT has returned without error. Only then
   is it acknowledged.
2. Checkpoints cannot take acknowledged (or merely committed) data away from the synced WAL
   before it is synced elsewhere. The writer turns automatic checkpoints off and runs
   ``PRAGMA wal_checkpoint(PASSIVE)`` itself, on its own thread, between batches (see
   ``Writer._checkpoint``), so any error is seen and checkpoints never run on another
   connection concurrently with a write. With ``synchronous=NORMAL`` "the WAL file is
   synchronized before each checkpoint and the database file is synchronized after each
   completed checkpoint and the WAL file header is synchronized when a WAL file begins to be
   reused after a checkpoint" (https://sqlite.org/pragma.html#pragma_synchronous). The WAL is
   reused ("reset": new frames written from its start over the old ones, under new salt values
   so the old frames stop counting, https://sqlite.org/fileformat2.html#walformat) only after
   a checkpoint ran to completion, i.e. copied every frame into the database file ("A
   checkpoint is only able to run to completion, and reset the WAL file, if there are no
   other database connections using the WAL file", https://sqlite.org/wal.html), and a
   completed checkpoint synced the database file. So if the frames of a not-yet-fsynced batch
   are overwritten by a reset before our fsync runs, they were synced first in the WAL (before
   the checkpoint) and then in the database file (after it).
3. SQLite deletes the ``-wal`` file only when the last connection closes
   (https://sqlite.org/wal.html); the writer's connection stays open for the store's life, so
   our descriptor always names the live WAL. It is opened once (at the first sync, the WAL
   existing by then) and kept, so a write-back error on the file is reported to our fsync
   (Linux reports it to every descriptor open when it happened).

Failure (EIO): after a failed fsync the kernel may have dropped the dirty pages and marked them
clean, so a later fsync can "succeed" without the data: nothing written before can be trusted
to be on disk. Every batch waiting on that fsync, every batch committed after it and every
later write gets ``StorageError``: the store fails closed (reads keep serving what was
acknowledged before) until it is restarted, when SQLite recovers from what is really on disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from millstream._stats import Histogram

from ._errors import StorageError

__all__ = ["WalFile", "WalSyncer"]

T = TypeVar("T")


class WalFile:
    """Our own descriptor of the ``-wal`` file, opened at the first sync and kept."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        # fdatasync, as SQLite itself uses on Linux: it flushes the data and whatever metadata
        # reading it back needs (the size), but not a timestamp-only inode update (which costs a
        # journal commit on ext4). Tests inject I/O errors here.
        self.sync_file: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
        self.sync_seconds = Histogram()  # /metrics: how long each fsync took

    def sync(self) -> None:
        """fsync the WAL (no-op if SQLite has not created it yet: nothing was committed)."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return
        started = time.perf_counter()
        self.sync_file(self._fd)
        self.sync_seconds.observe(time.perf_counter() - started)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class WalSyncer(Generic[T]):
    """The second thread: fsync the WAL, then ``publish`` every batch committed before it.

    ``fail(item, error)`` answers a batch that cannot be acknowledged. ``failure`` is set, for
    good, by the first failed fsync; the writer checks it before committing anything else.
    """

    def __init__(
        self, wal: WalFile, publish: Callable[[T], None], fail: Callable[[T, StorageError], None]
    ) -> None:
        self.wal = wal
        self._publish = publish
        self._fail = fail
        # One lock, two conditions, so each wake-up reaches only a thread that waits for it:
        # ``_work`` wakes this thread (something handed over, or stop); ``_done`` wakes the
        # writer (batches taken, an fsync finished). One shared condition woke this thread
        # after every inline sync for nothing: a context switch and a GIL hand-off per batch.
        lock = threading.Lock()
        self._work = threading.Condition(lock)
        self._done = threading.Condition(lock)
        self._pending: list[T] = []
        self._busy = False
        self._stopping = False
        self.failure: StorageError | None = None
        self.syncs = 0
        self._thread = threading.Thread(target=self._run, name="millstream-sqlite-fsync")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def hand_over(self, item: T) -> None:
        """Queue a batch whose COMMIT has returned; it is acknowledged after the next fsync."""
        with self._work:
            self._pending.append(item)
            self._work.notify()

    def sync_inline(self, item: T) -> bool:
        """If no fsync is in flight or pending, sync and publish ``item`` on the calling thread.

        The writer does this when no other job is waiting: there is nothing to overlap the
        fsync with, and waking this thread would only add a thread hand-off to the latency.
        Returns ``False`` (and does nothing) if the item must be handed over instead.
        """
        with self._work:
            if self._pending or self._busy:
                return False
            self._busy = True
        self._process([item])
        return True

    def wait_taken(self) -> None:
        """Block until the batches handed over are in an fsync that has begun.

        The writer calls this after each hand-over, so at most one committed batch waits
        for the fsync in flight: the jobs arriving meanwhile pile up in the queue and form
        one larger next batch instead of many small commits (one commit per fsync).
        """
        with self._done:
            while self._pending and self.failure is None:
                self._done.wait()

    def drain(self) -> None:
        """Block until every batch handed over is acknowledged (or failed)."""
        with self._done:
            while self._pending or self._busy:
                self._done.wait()

    def stop(self) -> None:
        """Acknowledge what is pending, then end the thread (blocking)."""
        with self._work:
            self._stopping = True
            self._work.notify()
        self._thread.join()

    def fail_closed(self, reason: str) -> StorageError:
        """Refuse every later write (a sync failed here or in a checkpoint)."""
        with self._done:
            if self.failure is None:
                self.failure = StorageError(
                    f"{reason}; the store stopped accepting writes because data it already wrote"
                    " may not be on disk (restart the server once the disk is healthy)"
                )
                self._done.notify_all()
            return self.failure

    def _run(self) -> None:
        while True:
            with self._work:
                while not self._pending and not self._stopping:
                    self._work.wait()
                if not self._pending:
                    return
                # Taken before the fsync starts: every batch here had committed already.
                group, self._pending = self._pending, []
                self._busy = True
                self._done.notify_all()
            self._process(group)

    def _process(self, group: list[T]) -> None:
        """Sync and publish ``group`` (the caller set ``_busy``); clear ``_busy`` after."""
        try:
            self._sync_and_publish(group)
        except Exception as exc:  # a bug here must not leave the writer waiting forever
            failure = self.fail_closed(f"the fsync thread failed: {exc!r}")
            for item in group:
                with contextlib.suppress(Exception):
                    self._fail(item, failure)
        finally:
            with self._done:
                self._busy = False
                self._done.notify_all()

    def _sync_and_publish(self, group: list[T]) -> None:
        failure = self.failure
        if failure is None:
            try:
                self.wal.sync()
                self.syncs += 1
            except OSError as exc:
                failure = self.fail_closed(f"fsync of the write-ahead log failed: {exc}")
        for item in group:
            if failure is None:
                self._publish(item)
            else:
                self._fail(item, failure)
