"""The Kafka front door: unmodified Kafka clients on the same log as the HTTP door.

An asyncio TCP server (``KafkaDoor``) and a thin translation between the Kafka protocol (the
sans-IO codec in ``codec``: frames, headers, messages) and ``millstream.log.Store``. It never
imports the HTTP door.
"""

from ._door import KafkaDoor
from ._settings import DEFAULT_MAX_REQUEST_SIZE, KafkaSettings

__all__ = ["DEFAULT_MAX_REQUEST_SIZE", "KafkaDoor", "KafkaSettings"]
