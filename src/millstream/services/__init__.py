"""Services that run inside a millstream node (LLM gateway, Sentinel, subscriptions).

A service uses the log through the ``Store`` it is given (never through a front door), keeps its
state in the store, and offers HTTP routes that the node mounts on the HTTP door.
"""

from ._once import FORWARDED_HEADER, RunOnce
from ._service import Route, Service

__all__ = ["FORWARDED_HEADER", "Route", "RunOnce", "Service"]
