"""What the produce path needs of a topic (exists? size limit? timestamp type?), cached.

``log.Topics.describe`` reads the key-value table and the stream: two store calls that a
produce request should not repeat for every batch. A described topic is kept for
``TTL`` seconds; the door forgets it at once when it changes the topic itself or when the store
says a partition is gone. A change made elsewhere (the HTTP admin API, a stream deleted over
HTTP) is seen within ``TTL``; a produce to a deleted stream fails meanwhile with
UNKNOWN_TOPIC_OR_PARTITION, which makes the client refresh its metadata.
"""

from __future__ import annotations

import time

from millstream.log import TopicInfo, TopicNotFound, Topics

__all__ = ["TopicCache"]

TTL = 1.0  # seconds a described topic is trusted
_MAX_ENTRIES = 10_000


class TopicCache:
    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._entries: dict[str, tuple[float, TopicInfo]] = {}

    async def get(self, name: str) -> TopicInfo | None:
        """The topic ``name``, or ``None`` when it does not exist."""
        now = time.monotonic()
        entry = self._entries.get(name)
        if entry is not None and now - entry[0] < TTL:
            return entry[1]
        try:
            info = await self.topics.describe(name)
        except TopicNotFound:
            self._entries.pop(name, None)
            return None
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[name] = (now, info)
        return info

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)
