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
from millstream.services import RunOnce, Service
from millstream.services.subscriptions import SubscriptionService

from ._options import NodeOptions

__all__ = ["ServiceMaker", "build_services", "service_makers"]

ServiceMaker = Callable[[Callable[[], KvWrite] | None], Service]


def service_makers(store: Store, options: NodeOptions) -> list[ServiceMaker]:
    """How to build every service ``options`` enables, in start order."""
    makers: list[ServiceMaker] = []
    if options.subscriptions:
        makers.append(
            lambda fence: SubscriptionService(store, public_url=options.public_url, fence=fence)
        )
    return makers


def build_services(
    store: Store, options: NodeOptions, members: Membership | None = None
) -> list[Service]:
    """Every service ``options`` enables, in start order; with ``members`` (a cluster), those
    that must run once run under ``RunOnce``."""
    services: list[Service] = []
    for make in service_makers(store, options):
        service = make(None)
        if members is not None and service.run_once:
            lease = Lease(store, f"service.{service.name}", members.name, ttl=options.cluster_ttl)
            service = RunOnce(_fenced(make), lease, members)
        services.append(service)
    return services


def _fenced(make: ServiceMaker) -> Callable[[Lease], Service]:
    return lambda lease: make(lease.fence)
