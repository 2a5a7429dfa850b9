"""The Durable Streams HTTP front door: a plain ASGI app over a ``millstream.log.Store``.

>>> from millstream.log import MemoryStore
>>> from millstream.server.http import create_app
>>> app = create_app(MemoryStore())  # serve with uvicorn, or Mount it in Starlette/FastAPI
"""

from ._app import DurableStreamsApp, create_app
from ._settings import DEFAULT_MAX_BODY_SIZE

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DurableStreamsApp", "create_app"]
