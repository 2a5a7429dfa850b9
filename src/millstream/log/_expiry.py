"""Reclaiming expired streams in the background, for whoever owns a started store.

The node runs it for ``millstream serve``; the HTTP app runs it when it manages its own store
(``create_app(manage_store=True)``, embedding without a node). Expired streams are invisible to
readers at once (the stores check TTLs on access); this only frees their storage.
"""

from __future__ import annotations

import asyncio
import logging

from ._store import Store

__all__ = ["RECLAIM_INTERVAL", "reclaim_forever"]

logger = logging.getLogger("millstream.log")

RECLAIM_INTERVAL = 30.0  # seconds between sweeps: storage of expired streams is freed this late


async def reclaim_forever(store: Store, interval: float = RECLAIM_INTERVAL) -> None:
    """Call ``store.reclaim_expired()`` every ``interval`` seconds until cancelled; a failed
    sweep is logged and retried at the next one."""
    while True:
        await asyncio.sleep(interval)
        try:
            reclaimed = await store.reclaim_expired()
        except Exception:
            logger.exception("reclaiming expired streams failed")
        else:
            if reclaimed:
                logger.info("reclaimed %d expired streams", reclaimed)
