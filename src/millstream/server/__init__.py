"""Front doors of millstream: ``server.http`` (Durable Streams over HTTP, an ASGI app).

``millstream serve`` runs them (``server._run``); each door only talks to ``millstream.log``.
"""

from .http import create_app

__all__ = ["create_app"]
