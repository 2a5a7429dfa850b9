"""The services a node runs, built from its options: the one place to add a service.

To add one: a ``Service`` subclass under ``millstream.services.<name>``, its options in
``NodeOptions`` and as ``millstream serve`` flags (``cli/_serve.py``), and one maker in
``service_makers``. The node mounts its ``routes()`` on the HTTP door, starts it after the
store and closes it before the store, in reverse order of that list.

A maker takes ``fence``: ``None`` on a node of its own, and on a cluster (a shared store) the
``Lease.fence`` of the service's lease when the service says ``run_once``; such a service then
runs on one node at a time (``RunOnce``) and should commit its state writes with ``fence()``
among them (``AppendRequest(kv=[fence()])``, ``store.kv_write([fence(), ...])``).
"""

from __future__ import annotations

from collections.abc import Callable

from millstream.log import KvWrite, Lease, Membership, Store
from millstream.server.http import HttpGate
from millstream.services import RunOnce, Service
from millstream.services.kafka_admin import KafkaAdminService
from millstream.services.llm import LLMGateway
from millstream.services.sentinel import SentinelService
from millstream.services.subscriptions import SubscriptionService

from ._options import NodeOptions

__all__ = ["ServiceMaker", "build_services", "service_makers"]

ServiceMaker = Callable[[Callable[[], KvWrite] | None], Service]


def service_makers(
    store: Store,
    options: NodeOptions,
    gate: HttpGate | None = None,
    *,
    kafka_address: Callable[[], str | None] = lambda: None,
) -> list[ServiceMaker]:
    """How to build every service ``options`` enables, in start order. ``kafka_address()`` is
    the Kafka door's advertised ``host:port`` once it listens (the admin API reports it)."""
    makers: list[ServiceMaker] = []
    if options.subscriptions:
        makers.append(
            lambda fence: SubscriptionService(
                store, public_url=options.public_url, gate=gate, fence=fence
            )
        )
    if options.kafka_admin:
        makers.append(lambda _fence: KafkaAdminService(store, kafka_address=kafka_address))
    if options.sentinel:
        makers.append(lambda fence: SentinelService(store, fence=fence))
    llm = options.llm
    if llm is not None:
        makers.append(lambda _fence: LLMGateway(store, llm))
    return makers


def build_services(
    store: Store,
    options: NodeOptions,
    gate: HttpGate | None = None,
    members: Membership | None = None,
    *,
    kafka_address: Callable[[], str | None] = lambda: None,
) -> list[Service]:
    """Every service ``options`` enables, in start order; with ``members`` (a cluster), those
    that must run once run under ``RunOnce``. ``gate`` is the node's HTTP gate (services that
    check tokens themselves use it)."""
    services: list[Service] = []
    for make in service_makers(store, options, gate, kafka_address=kafka_address):
        service = make(None)
        if members is not None and service.run_once:
            lease = Lease(store, f"service.{service.name}", members.name, ttl=options.cluster_ttl)
            service = RunOnce(_fenced(make), lease, members)
        services.append(service)
    return services


def _fenced(make: ServiceMaker) -> Callable[[Lease], Service]:
    return lambda lease: make(lease.fence)
