"""The one error type of the subscription APIs and the status each code answers with.

Every failure a client can cause is a ``SubscriptionError``; the ASGI handler turns it into
``{"error": {"code": ..., "message": ..., **extra}}`` with ``status`` (PROTOCOL.md §6, §7).
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATUS_BY_CODE", "SubscriptionError"]

STATUS_BY_CODE: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "WEBHOOK_URL_REJECTED": 400,
    "INVALID_OFFSET": 409,
    "TOKEN_INVALID": 401,
    "TOKEN_EXPIRED": 401,
    "SUBSCRIPTION_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "SUBSCRIPTION_ALREADY_EXISTS": 409,
    "FENCED": 409,
    "ALREADY_CLAIMED": 409,
    "NO_PENDING_WORK": 409,
    "UNAVAILABLE": 503,
}


class SubscriptionError(Exception):
    """A refused subscription request; ``hint`` says what the caller can do about it."""

    def __init__(self, code: str, message: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_BY_CODE.get(code, 400)
        self.extra = extra

    @property
    def hint(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}
