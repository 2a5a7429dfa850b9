"""The millstream node: one store, the HTTP and Kafka front doors, and the services.

``millstream serve`` is ``run(store, NodeOptions(...))``. A node owns the store (start, expiry,
shutdown), builds its services from its options (``build_services``, the place to add one),
mounts their routes on the HTTP door and merges their health into ``GET /health``.
"""

from ._logging import configure_logging
from ._node import Node
from ._options import NodeOptions
from ._run import run
from ._security import InsecureBind
from ._services import build_services

__all__ = ["InsecureBind", "Node", "NodeOptions", "build_services", "configure_logging", "run"]
