"""Front doors of millstream: ``server.http`` (Durable Streams over HTTP, an ASGI app) and
``server.kafka`` (the Kafka wire protocol over asyncio TCP).

A node (``millstream.node``) runs them over one store; each door talks only to ``millstream.log``
and the two never import each other.
"""

from .http import create_app

__all__ = ["create_app"]
