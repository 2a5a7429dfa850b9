"""Which stream paths are what: internal state, Kafka topic partitions, plain streams.

One rule set for both front doors (DESIGN.md: reserved internal paths live once, in the log):

- **Internal**: a path whose first segment starts with ``__`` (``__ds/...`` subscription state,
  ``__consumer_offsets``, service logs such as ``__sentinel/...``). Stores leave them out of
  listings and neither door lists them; the HTTP door serves ``__ds`` to subscriptions only.
- **Topics**: Kafka topic names are ``[A-Za-z0-9._-]{1,249}``, not ``.``/``..``. Partition 0 of
  topic ``T`` is the stream ``T`` itself, so a single-partition topic and the stream of the same
  name are one log; partition ``k >= 1`` is the stream ``T:k`` (decimal, no leading zeros).
  A topic name cannot contain ``:`` or ``/``, so no topic's partition can be another topic, and
  a path of the form ``T:k`` is reserved: only the topic layer creates it. Streams whose path
  is not a legal topic name (``chat/room-1``) are invisible to Kafka.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_TOPIC_NAME_LENGTH",
    "is_internal",
    "is_partition_path",
    "is_topic_name",
    "partition_path",
    "split_partition_path",
]

MAX_TOPIC_NAME_LENGTH = 249

_TOPIC_RE = re.compile(r"\A[A-Za-z0-9._-]{1,249}\Z")
_PARTITION_RE = re.compile(r"\A([A-Za-z0-9._-]{1,249}):([1-9][0-9]{0,9})\Z")


def is_internal(path: str) -> bool:
    """True for millstream's own state (first path segment starts with ``__``)."""
    return path.startswith("__")


def is_topic_name(name: str) -> bool:
    """True for a legal Kafka topic name (the characters and length Kafka itself allows)."""
    return name not in (".", "..") and _TOPIC_RE.match(name) is not None


def partition_path(topic: str, partition: int) -> str:
    """The stream that holds ``partition`` of ``topic``: ``T`` for 0, ``T:k`` otherwise."""
    if partition < 0:
        raise ValueError("partition must be >= 0")
    return topic if partition == 0 else f"{topic}:{partition}"


def split_partition_path(path: str) -> tuple[str, int] | None:
    """``(topic, partition)`` for a stream path that is a topic partition, else ``None``."""
    if is_topic_name(path):
        return path, 0
    match = _PARTITION_RE.match(path)
    if match is None or not is_topic_name(match.group(1)):
        return None
    return match.group(1), int(match.group(2))


def is_partition_path(path: str) -> bool:
    """True for ``T:k`` (k >= 1): reserved, created only with its topic."""
    match = _PARTITION_RE.match(path)
    return match is not None and is_topic_name(match.group(1))
