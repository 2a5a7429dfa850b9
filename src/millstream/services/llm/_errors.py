"""Errors the gateway answers, in the shape both kinds of clients read.

Body: ``{"detail": MESSAGE, "error": {"type": TYPE, "message": MESSAGE}}``. The seed's client
reads the top-level ``detail`` string (as FastAPI writes it) and tells a budget 429 from a
rate-limit 429 by "Budget exceeded" in it; OpenAI-style SDKs read ``error.message`` and honour
``x-should-retry: false`` (sent with budget errors) and ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayError"]

Headers = list[tuple[bytes, bytes]]


class GatewayError(Exception):
    """An answer other than success: ``status``, ``type`` (``error.type``), ``detail``."""

    def __init__(self, status: int, type: str, detail: str, headers: Headers | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type
        self.detail = detail
        self.headers: Headers = headers or []

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "error": {"type": self.type, "message": self.detail}}


def bad_request(detail: str, type: str = "invalid_request_error") -> GatewayError:
    return GatewayError(400, type, detail)


def unauthorized(detail: str) -> GatewayError:
    return GatewayError(401, "authentication_error", detail, [(b"www-authenticate", b"Bearer")])
