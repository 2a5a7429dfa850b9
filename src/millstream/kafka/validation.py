"""Topic-name validation, done before a name reaches the broker (Kafka's own rules)."""

from __future__ import annotations

import re

from millstream.kafka.exceptions import ConfigurationError

__all__ = ["MAX_TOPIC_NAME_LENGTH", "validate_topic_name"]

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL = re.compile(r"[A-Za-z0-9._-]+")
_ALLOWED = "letters, digits, '.', '_' and '-'"


def validate_topic_name(topic: str) -> None:
    """Raise ``ConfigurationError`` unless ``topic`` is a legal Kafka topic name: 1 to 249
    characters from ``[A-Za-z0-9._-]``, and not ``.`` or ``..``."""
    if not isinstance(topic, str):
        raise ConfigurationError(
            f"Topic name must be a str, not {type(topic).__name__}",
            hint=f"Pass the topic's name as a string of {_ALLOWED}",
        )
    if not topic:
        raise ConfigurationError(
            "Topic name cannot be empty", hint=f"Provide a non-empty name of {_ALLOWED}"
        )
    if len(topic) > MAX_TOPIC_NAME_LENGTH:
        raise ConfigurationError(
            f"Topic name exceeds maximum length of {MAX_TOPIC_NAME_LENGTH} characters "
            f"(got {len(topic)})",
            hint=f"Shorten the topic name to at most {MAX_TOPIC_NAME_LENGTH} characters",
        )
    if topic in (".", ".."):
        raise ConfigurationError(
            f"Topic name cannot be {topic!r}", hint="'.' and '..' are reserved by Kafka"
        )
    if _LEGAL.fullmatch(topic) is None:
        bad = "".join(sorted({ch for ch in topic if _LEGAL.fullmatch(ch) is None}))
        raise ConfigurationError(
            f"Topic name {topic!r} contains invalid characters: {bad!r}",
            hint=f"Topic names may only contain {_ALLOWED}",
        )
