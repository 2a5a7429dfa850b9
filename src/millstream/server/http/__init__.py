"""The Durable Streams HTTP front door: a plain ASGI app over a ``millstream.log.Store``.

>>> from millstream.log import MemoryStore
>>> from millstream.server.http import create_app
>>> app = create_app(MemoryStore())  # serve with uvicorn, or Mount it in Starlette/FastAPI

``HttpDoor`` serves the app on a socket inside a node (``millstream serve``), with the fast path.
Services mount routes on it (``routes=``) and build absolute URLs with ``stream_url_root``.
"""

from ._app import DurableStreamsApp, HealthProvider, create_app
from ._routing import stream_url_root
from ._run import HttpDoor
from ._settings import DEFAULT_MAX_BODY_SIZE, STREAM_PREFIX

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "STREAM_PREFIX",
    "DurableStreamsApp",
    "HealthProvider",
    "HttpDoor",
    "create_app",
    "stream_url_root",
]
