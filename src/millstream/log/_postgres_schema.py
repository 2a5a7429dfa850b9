"""The PostgreSQL schema behind ``PostgresStore``, its migrations, and rows ⇄ ``StreamState``.

All tables live in one PostgreSQL schema (``millstream`` by default), the same layout as the
SQLite file (``_sqlite_schema``) so both stores answer alike:

- ``streams``: one row per stream (live, or soft-deleted while forks read its data). ``id``
  comes from a sequence: never reused (ETags rely on it). A fork stores its source's id and
  where it diverges; it copies no data.
- ``messages``: one row per entry, ``(stream_id, seq)``; ``span`` NULL for a Durable Streams
  message, the record count for a Kafka batch (the producer's bytes, base offset rewritten).
- ``producers`` / ``kafka_producers``: idempotent-producer state of both doors, written in the
  transaction that writes the data it guards.
- ``time_index``: sparse lookup by time (see ``_sqlite_schema``).
- ``kv``: the key-value table; ``meta``: the key-value version counter and the schema version.
  ``producer_ids``: a sequence (Kafka producer ids, never handed out twice).

Migrations: a node that starts takes a transaction-scoped advisory lock (``MIGRATION_LOCK``),
reads ``meta.schema_version`` and applies the missing steps of ``MIGRATIONS`` in that one
transaction (PostgreSQL DDL is transactional: all or nothing). Nodes starting at the same time
wait on the lock and find the work done. A database of a newer version is refused. Steps only
add (tables, nullable or defaulted columns), so nodes still running the previous version keep
working while a newer one migrates (expand first; contract only in a later release).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ._model import ForkSpec, ProducerClaim, StreamConfig
from ._rules import KafkaProducerState, StreamState

__all__ = [
    "LOAD_COLUMNS",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "RECLAIM_LOCK",
    "SCHEMA_VERSION",
    "check_schema_name",
    "kafka_producer_state",
    "migrate",
    "state_from_row",
]

SCHEMA_VERSION = 1

#: Advisory lock keys (``pg_advisory_xact_lock``): one value space per database, so they are
#: chosen unlikely to collide with an application's own (ASCII "mill" and a counter).
MIGRATION_LOCK = 0x6D696C6C_0001
RECLAIM_LOCK = 0x6D696C6C_0002

_V1 = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE SEQUENCE IF NOT EXISTS stream_ids;
CREATE SEQUENCE IF NOT EXISTS producer_ids;
CREATE TABLE streams (
    id BIGINT PRIMARY KEY,
    path TEXT COLLATE "C" NOT NULL UNIQUE,  -- byte order: prefix scans, sorted like str
    content_type TEXT NOT NULL,
    ttl_seconds BIGINT,
    expires_at TEXT,
    expires_unix DOUBLE PRECISION,
    tail BIGINT NOT NULL DEFAULT 0,
    closed BOOLEAN NOT NULL DEFAULT FALSE,
    closed_by_producer TEXT,
    closed_by_epoch BIGINT,
    closed_by_seq BIGINT,
    last_stream_seq TEXT,
    fork_source_id BIGINT REFERENCES streams(id),
    fork_offset BIGINT,
    fork_sub_offset BIGINT NOT NULL DEFAULT 0,
    fork_base BIGINT NOT NULL DEFAULT 0,
    refcount INTEGER NOT NULL DEFAULT 0,
    soft_deleted BOOLEAN NOT NULL DEFAULT FALSE,
    last_access DOUBLE PRECISION NOT NULL,
    log_start BIGINT NOT NULL DEFAULT 0,
    max_timestamp BIGINT NOT NULL DEFAULT -1,
    kafka_entries BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX streams_expiry ON streams (expires_unix) WHERE expires_unix IS NOT NULL;
CREATE INDEX streams_ttl ON streams ((last_access + ttl_seconds)) WHERE ttl_seconds IS NOT NULL;
CREATE TABLE messages (
    stream_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    timestamp_ms BIGINT,
    span INTEGER,
    PRIMARY KEY (stream_id, seq)
);
CREATE TABLE producers (
    stream_id BIGINT NOT NULL,
    producer_id TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (stream_id, producer_id)
);
CREATE TABLE kafka_producers (
    stream_id BIGINT NOT NULL,
    producer_id BIGINT NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    batches TEXT NOT NULL,
    PRIMARY KEY (stream_id, producer_id)
);
CREATE TABLE time_index (
    stream_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (stream_id, ts)
);
CREATE TABLE kv (
    namespace TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);
INSERT INTO meta (name, value) VALUES ('kv_version', 1) ON CONFLICT DO NOTHING;
"""

#: ``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1`` (version 0: empty).
MIGRATIONS: dict[int, str] = {0: _V1}

_SCHEMA_NAME = re.compile(r"\A[a-z_][a-z0-9_]{0,62}\Z")


def check_schema_name(name: str) -> str:
    """A PostgreSQL schema name we can splice into SQL safely (lower case, no quoting)."""
    if not _SCHEMA_NAME.match(name):
        raise ValueError(f"schema must match {_SCHEMA_NAME.pattern}, not {name!r}")
    return name


async def migrate(conn: Any, schema: str) -> int:
    """Bring ``schema`` to ``SCHEMA_VERSION`` (see the module docstring); return the version
    found. ``conn`` is an asyncpg connection outside a transaction."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET LOCAL search_path = {schema}")
        exists = await conn.fetchval("SELECT to_regclass('meta') IS NOT NULL")
        found = 0
        if exists:
            found = await conn.fetchval(
                "SELECT coalesce((SELECT value FROM meta WHERE name = 'schema_version'), 0)"
            )
        if found > SCHEMA_VERSION:
            return int(found)
        for step in range(found, SCHEMA_VERSION):
            await conn.execute(MIGRATIONS[step])
        if found < SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', $1)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                SCHEMA_VERSION,
            )
        return int(found)


#: ``streams`` columns a state is built from (``s`` the stream, ``src`` its fork source).
LOAD_COLUMNS = """
s.id, s.path, s.content_type, s.ttl_seconds, s.expires_at, s.tail, s.closed,
s.closed_by_producer, s.closed_by_epoch, s.closed_by_seq, s.last_stream_seq,
src.path AS src_path, s.fork_offset, s.fork_sub_offset, s.fork_base, s.refcount,
s.soft_deleted, s.last_access, s.log_start, s.max_timestamp, s.kafka_entries
"""


def state_from_row(row: Sequence[Any]) -> StreamState:
    """A ``StreamState`` (without producers) from a row of ``LOAD_COLUMNS``."""
    (sid, path, content_type, ttl, expires_at, tail, closed, cb_id, cb_epoch, cb_seq,
     last_stream_seq, src_path, fork_offset, fork_sub, fork_base, refcount, soft_deleted,
     last_access, log_start, max_timestamp, kafka_entries) = row  # fmt: skip
    config = StreamConfig(
        content_type=content_type,
        ttl_seconds=ttl,
        expires_at=datetime.fromisoformat(expires_at) if expires_at is not None else None,
    )
    state = StreamState(path=path, stream_id=sid, config=config, last_access=last_access)
    state.tail = tail
    state.closed = closed
    state.closed_by = ProducerClaim(cb_id, cb_epoch, cb_seq) if cb_id is not None else None
    state.last_stream_seq = last_stream_seq
    if src_path is not None:
        state.fork = ForkSpec(src_path, fork_offset, fork_sub)
    state.fork_base = fork_base
    state.refcount = refcount
    state.soft_deleted = soft_deleted
    state.log_start = log_start
    state.max_timestamp = state.time_indexed = max_timestamp
    state.kafka_entries = kafka_entries
    return state


def kafka_producer_state(epoch: int, last_seq: int, batches: str) -> KafkaProducerState:
    return KafkaProducerState(epoch, last_seq, tuple(map(tuple, json.loads(batches))))
