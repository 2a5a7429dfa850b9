"""The API keys and version ranges millstream's Kafka door speaks: one table, used by the codec
(which versions it decodes and encodes), the message generator (which fields exist) and the
broker (what ApiVersions advertises).

Rules for editing it: the low end is the pre-flexible floor verified with aiokafka,
kafka-python and librdkafka (``kafka-broker-notes.md``), except Produce, listed from v0 because
librdkafka before 2.11.1 compresses with gzip, snappy or lz4 only if the broker lists Produce v0
(as Kafka 4.0 does, KAFKA-18659; the door refuses the v0/v1 message sets such requests carry);
the high end is the highest version any of the five clients (aiokafka, kafka-python 3,
librdkafka, kcat, KafkaJS) sends, capped where a newer version needs topic ids (Fetch 13+,
Produce 13+), which millstream does not have. After a change, run
``tools/gen_kafka_messages.py`` and the codec tests: every version listed here is round-tripped
against kafka-python's encoders.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = ["SUPPORTED_VERSIONS", "ApiKey"]


class ApiKey(IntEnum):
    """Kafka API keys the door answers (KIP-482 numbering, as in Kafka's message schemas)."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    DESCRIBE_CONFIGS = 32
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37


# (lowest, highest) version per API; what ApiVersions advertises. Comments: highest client ask.
SUPPORTED_VERSIONS: Final[dict[ApiKey, tuple[int, int]]] = {
    ApiKey.PRODUCE: (0, 10),  # librdkafka 10; v13 replaces names by topic ids
    ApiKey.FETCH: (4, 12),  # librdkafka 16, but v13+ fetches by topic id
    ApiKey.LIST_OFFSETS: (1, 11),  # kafka-python 11
    ApiKey.METADATA: (0, 13),  # kafka-python and librdkafka 13 (topic ids answered as zero)
    ApiKey.OFFSET_COMMIT: (2, 9),  # librdkafka 9; v10 commits by topic id
    ApiKey.OFFSET_FETCH: (1, 9),  # librdkafka 9; v10 fetches by topic id
    ApiKey.FIND_COORDINATOR: (0, 6),  # kafka-python 6
    ApiKey.JOIN_GROUP: (0, 7),  # kafka-python 7
    ApiKey.HEARTBEAT: (0, 4),  # kafka-python 4
    ApiKey.LEAVE_GROUP: (0, 5),  # kafka-python 5
    ApiKey.SYNC_GROUP: (0, 5),  # kafka-python 5
    ApiKey.DESCRIBE_GROUPS: (0, 6),  # kafka-python 6
    ApiKey.LIST_GROUPS: (0, 5),  # kafka-python and librdkafka 5
    ApiKey.SASL_HANDSHAKE: (0, 1),
    ApiKey.API_VERSIONS: (0, 4),  # kafka-python 4 (sent first), librdkafka 3
    ApiKey.CREATE_TOPICS: (2, 7),  # kafka-python 7
    ApiKey.DELETE_TOPICS: (1, 6),  # kafka-python 6 (by name; an id-only entry gets an error)
    ApiKey.DELETE_RECORDS: (0, 2),
    ApiKey.INIT_PRODUCER_ID: (0, 4),  # kafka-python and librdkafka 4
    ApiKey.DESCRIBE_CONFIGS: (1, 4),  # kafka-python 4
    ApiKey.SASL_AUTHENTICATE: (0, 2),
    ApiKey.CREATE_PARTITIONS: (0, 3),  # kafka-python 3
}
