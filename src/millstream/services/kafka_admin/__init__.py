"""The broker's HTTP admin API for the Kafka SDK (``millstream.kafka.Admin``), as a service.

Topics, cluster, consumer-group lag and message inspection, read from the store the Kafka door
writes; the JSON shapes are the SDK's (``millstream.kafka``).
"""

from ._service import MAX_LIMIT, KafkaAdminService

__all__ = ["MAX_LIMIT", "KafkaAdminService"]
