"""The services a node runs, built from its options: the one place to add a service.

To add one: a ``Service`` subclass under ``millstream.services.<name>``, its options in
``NodeOptions`` and as ``millstream serve`` flags (``cli/_serve.py``), and one branch below.
The node mounts its ``routes()`` on the HTTP door, starts it after the store and closes it
before the store, in reverse order of this list.
"""

from __future__ import annotations

from collections.abc import Callable

from millstream.log import Store
from millstream.server.http import HttpGate
from millstream.services import Service
from millstream.services.kafka_admin import KafkaAdminService
from millstream.services.llm import LLMGateway
from millstream.services.sentinel import SentinelService
from millstream.services.subscriptions import SubscriptionService

from ._options import NodeOptions

__all__ = ["build_services"]


def build_services(
    store: Store,
    options: NodeOptions,
    gate: HttpGate | None = None,
    *,
    kafka_address: Callable[[], str | None] = lambda: None,
) -> list[Service]:
    """Every service ``options`` enables, in start order. ``gate`` is the node's HTTP gate
    (services that check tokens themselves use it); ``kafka_address()`` is the Kafka door's
    advertised ``host:port`` once it listens (the admin API reports it)."""
    services: list[Service] = []
    if options.subscriptions:
        services.append(SubscriptionService(store, public_url=options.public_url, gate=gate))
    if options.kafka_admin:
        services.append(KafkaAdminService(store, kafka_address=kafka_address))
    if options.sentinel:
        services.append(SentinelService(store))
    if options.llm is not None:
        services.append(LLMGateway(store, options.llm))
    return services
