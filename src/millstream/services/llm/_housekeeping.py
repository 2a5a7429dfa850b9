"""What the gateway deletes as it ages, so its key-value records stay bounded: idempotency keys
past their 24 hours (``llm.idempotency``) and hourly usage buckets older than every period
``/v1/usage`` and ``millstream usage`` can ask for (``llm.usage/<project>/h/...``; the monthly
counters stay). Deletes are compare-and-set on the version read, so a key rewritten meanwhile
(an idempotency key used again) is left alone; several nodes may prune at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import orjson

from millstream.log import KvConflict, KvWrite, LogError, Store

from ._generations import NS_IDEMPOTENCY
from ._ledger import NS_USAGE, hour_key

__all__ = [
    "IDEMPOTENCY_TTL_SECONDS",
    "PRUNE_INTERVAL_SECONDS",
    "USAGE_HOURS_KEPT",
    "prune",
    "prune_forever",
]

log = logging.getLogger("millstream.llm")

#: How long a repeated ``Idempotency-Key`` attaches to the generation it started.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0
#: Hourly buckets kept: 62 days, more than a month since the 1st plus a week.
USAGE_HOURS_KEPT = 62 * 24
PRUNE_INTERVAL_SECONDS = 3600.0
_BATCH = 256


async def prune(store: Store, now: float | None = None) -> int:
    """Delete expired idempotency keys and old hourly buckets; how many went."""
    now = time.time() if now is None else now
    stale: list[KvWrite] = []
    for key, item in await store.kv_scan(NS_IDEMPOTENCY):
        created = orjson.loads(item.value).get("created", 0.0)
        if now - created >= IDEMPOTENCY_TTL_SECONDS:
            stale.append(KvWrite(NS_IDEMPOTENCY, key, None, expect_version=item.version))
    oldest = hour_key(now - USAGE_HOURS_KEPT * 3600)
    for key, item in await store.kv_scan(NS_USAGE):
        _, kind, when = key.rsplit("/", 2)
        if kind == "h" and when < oldest:
            stale.append(KvWrite(NS_USAGE, key, None, expect_version=item.version))
    return await _delete(store, stale)


async def _delete(store: Store, writes: Sequence[KvWrite]) -> int:
    deleted = 0
    for first in range(0, len(writes), _BATCH):
        batch = writes[first : first + _BATCH]
        try:
            await store.kv_write(batch)
            deleted += len(batch)
        except KvConflict:  # one changed meanwhile: delete the others one by one
            for write in batch:
                with contextlib.suppress(KvConflict):
                    await store.kv_write([write])
                    deleted += 1
    return deleted


async def prune_forever(store: Store, interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    """``prune`` every ``interval`` seconds, the first time one interval after starting."""
    while True:
        await asyncio.sleep(interval)
        try:
            deleted = await prune(store)
        except LogError as exc:
            log.warning("llm: pruning old records failed (will retry): %s", exc)
            continue
        if deleted:
            log.info("llm: pruned %d expired idempotency keys and old usage buckets", deleted)
