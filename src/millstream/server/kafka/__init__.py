"""The Kafka front door: unmodified Kafka clients on the same log as the HTTP door.

An asyncio TCP server (``KafkaDoor``) and a thin translation between the Kafka protocol (the
sans-IO codec in ``codec``: frames, headers, messages) and ``millstream.log.Store``. It never
imports the HTTP door.
"""

from typing import TYPE_CHECKING, Any

from ._settings import DEFAULT_MAX_REQUEST_SIZE, KafkaSettings

if TYPE_CHECKING:
    from ._door import KafkaDoor

__all__ = ["DEFAULT_MAX_REQUEST_SIZE", "KafkaDoor", "KafkaSettings"]


def __getattr__(name: str) -> Any:
    # The door (and the codec under it, costly to import) loads on first use, so commands
    # that only need the settings (``millstream --help``, the client commands) start fast.
    if name == "KafkaDoor":
        from ._door import KafkaDoor

        return KafkaDoor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
