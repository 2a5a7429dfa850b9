"""Small values shared by the producer, the consumer and the admin client."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["OffsetAndMetadata", "TopicPartition"]


class TopicPartition(NamedTuple):
    """One partition of one topic. Equal to (and hashes like) aiokafka's and kafka-python's
    ``TopicPartition`` and the plain tuple ``(topic, partition)``, so any of them may be
    passed where the SDK asks for one."""

    topic: str
    partition: int


class OffsetAndMetadata(NamedTuple):
    """An offset to commit, with an optional note stored beside it."""

    offset: int
    metadata: str = ""
