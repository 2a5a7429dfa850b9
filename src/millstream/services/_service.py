"""The one interface between the node and the services it runs."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from millstream._stats import Sample
from millstream.server.http._types import ASGIApp

__all__ = ["Route", "Service"]


@dataclass(frozen=True, slots=True)
class Route:
    """Requests whose path (below the app's root path) is ``prefix`` or starts with ``prefix``
    followed by ``/`` go to ``app``, with the scope unchanged. Exact paths such as
    ``/v1/chat/completions`` and trees such as ``/api/v1`` both work."""

    prefix: str
    app: ASGIApp

    def matches(self, path: str) -> bool:
        prefix = self.prefix
        return path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")


class Service(abc.ABC):
    """Something that runs inside the node.

    The node builds each service with the store and its settings, mounts ``routes()`` on the
    HTTP door, calls ``start()`` after the store has started and ``aclose()`` before the store
    closes (in reverse order of starting). ``health()`` joins the node's ``GET /health``.

    >>> class Hello(Service):
    ...     name = "hello"
    ...     async def start(self) -> None: ...
    ...     async def aclose(self) -> None: ...
    """

    #: Short name used in logs, the startup line and ``/health`` (``"llm"``, ``"sentinel"``).
    name: str = "service"
    #: True for a service that must run on one node of a cluster at a time (it delivers,
    #: sweeps or detects for everyone): the node then runs it under ``RunOnce``.
    run_once: bool = False
    #: Whether the service checks tokens on its routes itself (the LLM gateway, the
    #: subscriptions). Routes of services that do not are served only to ``admin:`` tokens
    #: when the node requires tokens (``docs/security.md``).
    authenticates: bool = False

    def routes(self) -> Sequence[Route]:
        """HTTP routes to mount; none by default."""
        return ()

    @abc.abstractmethod
    async def start(self) -> None:
        """Start background work (the store is already started)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop background work and finish in-flight requests; idempotent."""

    def describe(self) -> str | None:
        """One line for ``millstream serve``'s startup output, printed before the listening
        line (what the service runs with, or what it lacks); ``None`` says nothing."""
        return None

    async def health(self) -> dict[str, Any]:
        """What ``GET /health`` shows under ``services.<name>``."""
        return {"status": "ok"}

    def samples(self) -> list[Sample]:
        """Values for ``/metrics`` (the LLM gateway: tokens and cost); none by default."""
        return []
