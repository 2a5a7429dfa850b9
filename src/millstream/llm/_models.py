"""The seed's data shapes (``Model``, ``Usage``, ``Response``, batch and usage results).

Field names, order and defaults are the upstream client's, so code written for it runs with only
the import changed. The gateway service builds its JSON answers from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["BatchResponse", "BatchResult", "Model", "Response", "Usage", "UsageStats"]


class Model(StrEnum):
    """The model tiers the gateway routes between; ``AUTO`` lets it choose."""

    HAIKU = "haiku"
    SONNET = "sonnet"
    OPUS = "opus"
    AUTO = "auto"


@dataclass
class Usage:
    """Tokens one request consumed."""

    input_tokens: int
    output_tokens: int
    total_tokens: int

    @classmethod
    def from_json(cls, value: Any) -> Usage:
        """From the gateway's usage object (extra OpenAI-style fields are ignored)."""
        return cls(
            input_tokens=int(value["input_tokens"]),
            output_tokens=int(value["output_tokens"]),
            total_tokens=int(value["total_tokens"]),
        )


@dataclass
class Response:
    """One completion: its text, the model that wrote it, tokens and cost in USD."""

    id: str
    model: str
    content: str
    usage: Usage
    cost: float
    project_id: str


@dataclass
class BatchResult:
    """One prompt of a batch; ``status`` is ``"completed"`` or ``"failed"`` (then ``error``)."""

    id: str | None
    prompt: str
    status: str
    content: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    error: str | None = None


@dataclass
class BatchResponse:
    """A whole batch: counts, every result in request order, and totals."""

    total: int
    completed: int
    failed: int
    results: list[BatchResult] = field(default_factory=list)
    total_cost: float = 0.0
    total_tokens: int = 0


@dataclass
class UsageStats:
    """A project's usage over ``period`` (month since the 1st, week = 7 days, day = 24 h);
    ``limit``/``remaining`` are its monthly token budget (``None``: unlimited)."""

    project_id: str
    period: str
    total_tokens: int
    total_cost: float
    by_model: dict[str, dict[str, int | float]]
    limit: int | None
    remaining: int | None
