"""The SQLite file behind ``SqliteStore``: schema, connection set-up, and rows ⇄ ``StreamState``.

One file, WAL mode. Tables:

- ``streams``: one row per stream that exists (live, or soft-deleted while forks need its data).
  ``id`` is ``AUTOINCREMENT`` so an id is never reused, even after the row is deleted (ETags
  rely on it). A fork stores its source's id and where it diverges; it copies no data.
  ``log_start`` (Kafka DeleteRecords), ``max_timestamp`` (the highest record timestamp so far)
  and ``kafka_entries`` (the stream holds or held a Kafka batch) came with version 2.
- ``messages``: one row per *entry*, keyed ``(stream_id, seq)`` where ``seq`` is the entry's
  first position. A Durable Streams message has ``span`` NULL and spans one position; a Kafka
  record batch is stored as the producer's bytes (base offset rewritten) in one row with
  ``span`` = its record count. ``timestamp_ms`` is the append time of a message, the max
  timestamp of a batch. ``key``/``headers`` are unused (a batch carries its records' keys and
  headers). ``WITHOUT ROWID`` keeps each stream's entries clustered in seq order, so a catch-up
  read is one range scan. A fork's own rows start at its ``fork_base``; a byte sub-offset fork
  stores the partial first message as its own row. A batch of at least ``EXTERNAL_MIN`` bytes
  is kept in a batch file instead (``_sqlite_files``): its row has ``file``, ``pos`` and
  ``size`` set and an empty ``data`` (version 3).
- ``producers``: Durable Streams idempotent-producer state, written in the same transaction as
  the data; ``kafka_producers``: the same for Kafka producer ids (KIP-98: epoch, last
  sequence, the last 5 batches as JSON).
- ``time_index``: a sparse index for lookups by time, Kafka's time index in SQL: a row
  ``(stream_id, ts, seq)`` is written when the entry at ``seq`` raises the stream's highest
  timestamp to ``ts`` and at least ``TIME_INDEX_STEP_MS`` above the last indexed one, so every
  entry before ``seq`` is older than ``ts``. A lookup starts its scan at the last indexed
  ``ts`` not above the target: a bounded scan, at most ~10 rows a second per stream written.
- ``kv``: the key-value table (``namespace``, ``key``) → ``value``, ``version``.
- ``batch_files``: each batch file's live rows and committed length (version 3).
- ``meta``: counters that must never go back: the next key-value version and the next Kafka
  producer id, committed with the writes that use them.

``PRAGMA user_version`` holds ``SCHEMA_VERSION``; a file from a newer version is refused and an
older one is migrated in place, in one transaction, when the store opens (``MIGRATIONS``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from ._errors import StorageError
from ._model import ForkSpec, ProducerClaim, ProducerState, StreamConfig
from ._rules import KafkaProducerState, StreamState

__all__ = [
    "DB_FILENAME",
    "INSERT_STREAM",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SELECT_ENTRIES",
    "SELECT_ENTRY_START",
    "SELECT_RANGE",
    "TIME_INDEX_STEP_MS",
    "UPDATE_STREAM",
    "FsyncMode",
    "connect",
    "insert_flat",
    "insert_many",
    "kafka_producer_row",
    "load_state",
    "prepare_schema",
    "read_counters",
    "stream_row",
]

FsyncMode = Literal["always", "interval", "never"]
DB_FILENAME = "millstream.db"
SCHEMA_VERSION = 3
TIME_INDEX_STEP_MS = 100

# Version 1, as created by the first release; later versions are reached by MIGRATIONS, so a
# new file and a migrated one go through the same statements.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    content_type TEXT NOT NULL,
    ttl_seconds INTEGER,
    expires_at TEXT,              -- ISO 8601 with offset, exactly as given (idempotent create)
    expires_unix REAL,            -- the same instant, for SQL filtering in reclaim
    tail INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0,
    closed_by_producer TEXT,      -- the producer claim that closed it (duplicate close detection)
    closed_by_epoch INTEGER,
    closed_by_seq INTEGER,
    last_stream_seq TEXT,
    fork_source_id INTEGER REFERENCES streams(id),
    fork_offset INTEGER,
    fork_sub_offset INTEGER NOT NULL DEFAULT 0,
    fork_base INTEGER NOT NULL DEFAULT 0,
    refcount INTEGER NOT NULL DEFAULT 0,
    soft_deleted INTEGER NOT NULL DEFAULT 0,
    last_access REAL NOT NULL     -- persisted lazily (every few seconds), memory is ahead
);
CREATE TABLE IF NOT EXISTS messages (
    stream_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    key BLOB,
    headers BLOB,
    timestamp_ms INTEGER,
    PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
    stream_id INTEGER NOT NULL,
    producer_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (stream_id, producer_id)
) WITHOUT ROWID;
"""

_V2 = """
ALTER TABLE streams ADD COLUMN log_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN max_timestamp INTEGER NOT NULL DEFAULT -1;
ALTER TABLE streams ADD COLUMN kafka_entries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN span INTEGER;
UPDATE streams SET max_timestamp = coalesce(
    (SELECT max(m.timestamp_ms) FROM messages AS m WHERE m.stream_id = streams.id), -1);
CREATE TABLE kafka_producers (
    stream_id INTEGER NOT NULL,
    producer_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    batches TEXT NOT NULL,
    PRIMARY KEY (stream_id, producer_id)
) WITHOUT ROWID;
CREATE TABLE time_index (
    stream_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (stream_id, ts)
) WITHOUT ROWID;
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('kv_version', 1), ('producer_id', 1);
"""

# Version 3: large Kafka batches live in batch files (``_sqlite_files``); their rows keep
# where (``file``, ``pos``, ``size``) and an empty ``data``.
_V3 = """
ALTER TABLE messages ADD COLUMN file INTEGER;
ALTER TABLE messages ADD COLUMN pos INTEGER;
ALTER TABLE messages ADD COLUMN size INTEGER;
CREATE TABLE batch_files (
    id INTEGER PRIMARY KEY,
    live INTEGER NOT NULL,
    end_pos INTEGER NOT NULL
);
"""

#: ``MIGRATIONS[n]`` takes a file from version ``n`` to ``n + 1`` (version 0: a new file).
MIGRATIONS: dict[int, str] = {0: _SCHEMA_V1, 1: _V2, 2: _V3}

# How each fsync mode maps to SQLite. In WAL mode a commit appends frames to the -wal file:
# - "always": NORMAL, so the COMMIT itself does not fsync; the store fsyncs the WAL on a second
#   thread and acknowledges a batch only after an fsync that started after its COMMIT returned
#   (pipelined group commit, the argument is in _sqlite_sync). Survives kill -9 and power loss.
# - "interval": NORMAL (fsync only at checkpoints): a process crash loses nothing (the OS has
#   the pages), an OS crash or power cut can lose recent commits; the store adds an fsync every
#   ~100 ms.
# - "never": OFF never fsyncs: an OS crash can lose acknowledged writes and, rarely, corrupt
#   the file.
_SYNCHRONOUS: dict[str, str] = {"always": "NORMAL", "interval": "NORMAL", "never": "OFF"}


def connect(db_path: str, fsync: FsyncMode, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection in autocommit mode (we issue BEGIN/COMMIT) with our pragmas."""
    try:
        conn = sqlite3.connect(
            db_path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[fsync]}")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {db_path}: {exc}") from exc
    return conn


def prepare_schema(conn: sqlite3.Connection) -> None:
    """Switch to WAL and create the tables, or check an existing file's schema version."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"SQLite refused WAL mode (got {mode!r})")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the data file has schema version {version}; this millstream knows {SCHEMA_VERSION}"
        )
    if version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # statement by statement: executescript() would COMMIT before running
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def read_counters(conn: sqlite3.Connection) -> dict[str, int]:
    """The ``meta`` counters (``kv_version``, ``producer_id``)."""
    return dict(conn.execute("SELECT name, value FROM meta"))


_LOAD = """
SELECT s.id, s.content_type, s.ttl_seconds, s.expires_at, s.tail, s.closed,
       s.closed_by_producer, s.closed_by_epoch, s.closed_by_seq, s.last_stream_seq,
       src.path, s.fork_offset, s.fork_sub_offset, s.fork_base, s.refcount, s.soft_deleted,
       s.last_access, s.log_start, s.max_timestamp, s.kafka_entries
FROM streams AS s LEFT JOIN streams AS src ON src.id = s.fork_source_id
WHERE s.path = ?
"""


def load_state(conn: sqlite3.Connection, path: str) -> StreamState | None:
    """Read one stream's state (with its producers) from the file, or ``None`` if absent."""
    row = conn.execute(_LOAD, (path,)).fetchone()
    if row is None:
        return None
    (sid, content_type, ttl, expires_at, tail, closed, cb_id, cb_epoch, cb_seq, last_stream_seq,
     src_path, fork_offset, fork_sub, fork_base, refcount, soft_deleted, last_access, log_start,
     max_timestamp, kafka_entries) = row  # fmt: skip
    config = StreamConfig(
        content_type=content_type,
        ttl_seconds=ttl,
        expires_at=datetime.fromisoformat(expires_at) if expires_at is not None else None,
    )
    state = StreamState(path=path, stream_id=sid, config=config, last_access=last_access)
    state.tail = tail
    state.closed = bool(closed)
    state.closed_by = ProducerClaim(cb_id, cb_epoch, cb_seq) if cb_id is not None else None
    state.last_stream_seq = last_stream_seq
    if src_path is not None:
        state.fork = ForkSpec(src_path, fork_offset, fork_sub)
    state.fork_base = fork_base
    state.refcount = refcount
    state.soft_deleted = bool(soft_deleted)
    state.log_start = log_start
    state.max_timestamp = state.time_indexed = max_timestamp
    state.kafka_entries = bool(kafka_entries)
    state.producers = {
        pid: ProducerState(epoch, last_seq)
        for pid, epoch, last_seq in conn.execute(
            "SELECT producer_id, epoch, last_seq FROM producers WHERE stream_id = ?", (sid,)
        )
    }
    if kafka_entries:
        state.kafka_producers = {
            pid: KafkaProducerState(epoch, last_seq, tuple(map(tuple, json.loads(batches))))
            for pid, epoch, last_seq, batches in conn.execute(
                "SELECT producer_id, epoch, last_seq, batches FROM kafka_producers"
                " WHERE stream_id = ?",
                (sid,),
            )
        }
    return state


def kafka_producer_row(sid: int, pid: int, state: KafkaProducerState) -> tuple[object, ...]:
    return (sid, pid, state.epoch, state.last_seq, json.dumps(state.batches))


def stream_row(state: StreamState) -> tuple[object, ...]:
    """The mutable columns of ``streams`` for an UPDATE, in ``UPDATE_STREAM`` order."""
    closed_by = state.closed_by
    return (
        state.tail,
        int(state.closed),
        closed_by.producer_id if closed_by else None,
        closed_by.epoch if closed_by else None,
        closed_by.seq if closed_by else None,
        state.last_stream_seq,
        state.refcount,
        int(state.soft_deleted),
        state.last_access,
        state.log_start,
        state.max_timestamp,
        int(state.kafka_entries),
        state.stream_id,
    )


UPDATE_STREAM = """
UPDATE streams SET tail = ?, closed = ?, closed_by_producer = ?, closed_by_epoch = ?,
    closed_by_seq = ?, last_stream_seq = ?, refcount = ?, soft_deleted = ?, last_access = ?,
    log_start = ?, max_timestamp = ?, kafka_entries = ?
WHERE id = ?
"""

INSERT_STREAM = """
INSERT INTO streams (path, content_type, ttl_seconds, expires_at, expires_unix, tail, closed,
    fork_source_id, fork_offset, fork_sub_offset, fork_base, last_access, log_start,
    max_timestamp)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

SELECT_RANGE = "SELECT data FROM messages WHERE stream_id = ? AND seq >= ? AND seq < ? ORDER BY seq"
#: Entries (messages and batches) from ``seq`` on, for streams that hold Kafka batches; a batch
#: in a batch file has ``file`` set and an empty ``data``.
SELECT_ENTRIES = (
    "SELECT seq, data, span, timestamp_ms, file, pos, size FROM messages WHERE stream_id = ?"
    " AND seq >= ? AND seq < ? ORDER BY seq"
)
#: The first position of the entry holding a position (a batch may start before it).
SELECT_ENTRY_START = (
    "SELECT seq FROM messages WHERE stream_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1"
)


#: Rows per multi-row INSERT: 4 columns each stays under SQLite's historical 999-parameter cap
#: (5-column tables use 192).
_ROWS_PER_INSERT = 240


def _values_sql(head: str, width: int, count: int, tail: str = "") -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * count)}{tail}"


_MANY_SQL: dict[tuple[str, int], str] = {}
_MANY_PARTS: dict[str, tuple[str, int, str]] = {
    "messages": ("INSERT INTO messages (stream_id, seq, data, timestamp_ms)", 4, ""),
    "producers": (
        "INSERT INTO producers (stream_id, producer_id, epoch, last_seq)",
        4,
        " ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = excluded.epoch,"
        " last_seq = excluded.last_seq",
    ),
    "batches": ("INSERT INTO messages (stream_id, seq, data, timestamp_ms, span)", 5, ""),
    "external": (
        "INSERT INTO messages (stream_id, seq, data, timestamp_ms, span, file, pos, size)",
        8,
        "",
    ),
    "kafka_producers": (
        "INSERT INTO kafka_producers (stream_id, producer_id, epoch, last_seq, batches)",
        5,
        " ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = excluded.epoch,"
        " last_seq = excluded.last_seq, batches = excluded.batches",
    ),
    "time_index": ("INSERT OR REPLACE INTO time_index (stream_id, ts, seq)", 3, ""),
}


def insert_many(conn: sqlite3.Connection, table: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert ``rows`` into ``messages`` or upsert them into ``producers``, many per statement.

    ``executemany`` runs one SQLite step per row and CPython releases and re-takes the GIL
    around each; while the event loop is busy, every re-take can wait for a whole GIL switch
    interval. One multi-row statement is one step.
    """
    insert_flat(conn, table, [value for row in rows for value in row])


def insert_flat(conn: sqlite3.Connection, table: str, values: Sequence[object]) -> None:
    """``insert_many`` for rows already laid end to end, as bound."""
    head, width, tail = _MANY_PARTS[table]
    step = width * (_ROWS_PER_INSERT if width <= 4 else 192 if width <= 5 else 120)
    for start in range(0, len(values), step):
        chunk = values[start : start + step] if len(values) > step else values
        key = (table, len(chunk) // width)
        sql = _MANY_SQL.get(key)
        if sql is None:
            sql = _MANY_SQL[key] = _values_sql(head, width, key[1], tail)
        conn.execute(sql, chunk)
