"""Request and response headers (Kafka's RequestHeader v0-2 and ResponseHeader v0-1).

Request header (KIP-482):   v1: api_key int16 | api_version int16 | correlation_id int32 |
                                client_id nullable string (int16 length, never compact)
                            v2: v1 followed by a tagged-fields section
Response header:            v0: correlation_id int32;  v1: v0 followed by tagged fields

A request uses header v2 when its API version is flexible, else v1 (v0, without client id,
is only ControlledShutdown v0, which no client sends to us). Responses use v1 when flexible,
except ApiVersions responses, which always use v0 so that a client that does not know the
broker's versions yet can read them (KIP-511).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RequestHeader"]


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """Who asked what: answer with ``encode_response(header, ...)`` to echo the correlation id
    and use the version the client asked for."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None = None
