"""Every error the LLM client raises, one tree, so callers catch ours and never httpx's.

    ClaudeAPIError            status, type, hint, retryable (base; the seed's)
    ├── AuthenticationError   401/403: the API key is missing, wrong or revoked
    ├── BudgetExceededError   429 "Budget exceeded": the project's budget is spent (never retried)
    ├── RateLimitError        429 rate limit: slow down; ``retry_after`` seconds (retried first)
    ├── TimeoutError          the request or the generation took longer than ``timeout``
    ├── BadRequestError       400/404/409/413/422: the request cannot succeed as sent
    ├── ServerError           5xx: the gateway or its provider failed (retried first)
    ├── APIConnectionError    no HTTP answer: refused, reset, DNS (retried first)
    └── GenerationError       a streamed generation ended failed or cancelled

``retryable`` says whether the same request may succeed later; the client has already retried
such errors ``max_retries`` times before raising.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ClaudeAPIError",
    "GenerationError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
]


class ClaudeAPIError(Exception):
    """Base of every client error: ``status`` (HTTP, or None), ``type`` (the gateway's
    ``error.type``), ``hint`` (what to do) and ``retryable``."""

    default_hint = ""
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.hint = hint if hint is not None else self.default_hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text += f" (status={self.status})"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, status={self.status!r})"


class AuthenticationError(ClaudeAPIError):
    """401/403: the gateway did not accept the API key."""

    default_hint = (
        "pass api_key= (create one with `millstream keys create --project NAME`); "
        "a revoked key stays revoked"
    )


class BudgetExceededError(ClaudeAPIError):
    """429 whose detail says "Budget exceeded": the project's budget for the month is spent."""

    default_hint = (
        "raise the budget (`millstream keys create --budget-tokens`) or wait for next month"
    )


class RateLimitError(ClaudeAPIError):
    """429 rate limit: too many requests or tokens per minute for this key."""

    default_hint = "slow down; the limit resets within a minute (see retry_after)"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TimeoutError(ClaudeAPIError):
    """The request, or the generation on the gateway, took longer than its timeout."""

    default_hint = "raise timeout= on the client or the call (the gateway allows up to 300 s)"
    retryable = True


class BadRequestError(ClaudeAPIError):
    """400/404/409/413/422: the gateway refused the request as sent."""

    default_hint = "the request is malformed or names something unknown; see the message"


class ServerError(ClaudeAPIError):
    """5xx: the gateway or the provider behind it failed."""

    default_hint = "the gateway or its provider failed; the request may succeed later"
    retryable = True


class APIConnectionError(ClaudeAPIError):
    """No HTTP answer at all: connection refused or reset, DNS failure, TLS error."""

    default_hint = "check that `millstream serve` is running and base_url points at it"
    retryable = True


class GenerationError(ClaudeAPIError):
    """A streamed generation ended ``failed`` or ``cancelled`` after it had started."""

    default_hint = "the generation's terminal record says why; start a new request to retry"
