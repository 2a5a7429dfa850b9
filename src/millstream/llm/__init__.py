"""The LLM client of seed 004: ``ClaudeClient``/``AsyncClaudeClient`` for millstream's LLM
gateway (``millstream serve``), with the upstream client's names and signatures, plus real
token streaming that resumes after a dropped connection, idempotent retries with exponential
backoff and jitter, and typed errors with ``status``, ``hint`` and ``retryable``.

Layers: ``_models``/``_errors``/``_wire`` (shapes shared with the gateway), ``_core`` (requests,
retries and streams as flows, no I/O), then the twins ``_sync`` and ``_async``. It never imports
server code.
"""

from millstream.llm._async import AsyncClaudeClient
from millstream.llm._errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ClaudeAPIError,
    GenerationError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from millstream.llm._models import BatchResponse, BatchResult, Model, Response, Usage, UsageStats
from millstream.llm._sync import ClaudeClient

__all__ = [
    "APIConnectionError",
    "AsyncClaudeClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchResponse",
    "BatchResult",
    "BudgetExceededError",
    "ClaudeAPIError",
    "ClaudeClient",
    "GenerationError",
    "Model",
    "RateLimitError",
    "Response",
    "ServerError",
    "TimeoutError",
    "Usage",
    "UsageStats",
]
