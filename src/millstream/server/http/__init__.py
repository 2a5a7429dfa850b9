"""The Durable Streams HTTP front door: a plain ASGI app over a ``millstream.log.Store``.

>>> from millstream.log import MemoryStore
>>> from millstream.server.http import create_app
>>> app = create_app(MemoryStore())  # serve with uvicorn, or Mount it in Starlette/FastAPI

``HttpDoor`` serves the app on a socket inside a node (``millstream serve``), with the fast path
(it needs uvicorn, loaded on first use).
Services mount routes on it (``routes=``) and build absolute URLs with ``stream_url_root``.
"""

from typing import TYPE_CHECKING, Any

from ._app import DurableStreamsApp, HealthProvider, create_app
from ._gate import HttpGate
from ._routing import stream_url_root
from ._settings import DEFAULT_MAX_BODY_SIZE, STREAM_PREFIX

if TYPE_CHECKING:
    from ._run import HttpDoor

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "STREAM_PREFIX",
    "DurableStreamsApp",
    "HealthProvider",
    "HttpDoor",
    "HttpGate",
    "create_app",
    "stream_url_root",
]


def __getattr__(name: str) -> Any:
    # uvicorn loads with the door only: the app mounts in any ASGI server without it.
    if name == "HttpDoor":
        from ._run import HttpDoor

        return HttpDoor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
