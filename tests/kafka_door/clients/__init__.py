"""The Kafka clients of the client matrix (``test_matrix.py``), each behind ``Client``."""

from __future__ import annotations

from ._aiokafka import AiokafkaClient
from ._api import (
    Client,
    Cluster,
    Consumer,
    Delivered,
    GroupView,
    KafkaCallError,
    NotAvailable,
    Received,
    Record,
)
from ._confluent import ConfluentClient
from ._kafka_python import KafkaPythonClient
from ._kafkajs import KafkaJSClient
from ._kcat import KcatClient

__all__ = [
    "CLIENTS",
    "Client",
    "Cluster",
    "Consumer",
    "Delivered",
    "GroupView",
    "KafkaCallError",
    "NotAvailable",
    "Received",
    "Record",
]

#: the matrix's columns, in order
CLIENTS: dict[str, type[Client]] = {
    client.name: client
    for client in (AiokafkaClient, KafkaPythonClient, ConfluentClient, KcatClient, KafkaJSClient)
}
