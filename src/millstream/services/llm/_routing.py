"""``auto`` routing: which tier (haiku, sonnet, opus) answers a request, by the seed's rules.

In order (seed-apis.md, seed 004):

1. remaining budget below 1,000 tokens: haiku;
2. context above 10,000 tokens: opus;
3. a prompt under 100 characters with a simple-task word (list, format, count, show, get,
   create, add): haiku;
4. a prompt with a complex-task word (analyze, architect, debug, design, implement, optimize,
   refactor, review, test, diagnose, strategy): sonnet, or haiku if under 5,000 tokens remain;
5. otherwise sonnet.

A word matches at the start of a word, case-insensitively ("Tests" and "testing" match "test",
"latest" does not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LOW_BUDGET_TOKENS", "TIERS", "RouteDecision", "route"]

TIERS = ("haiku", "sonnet", "opus")
LOW_BUDGET_TOKENS = 1_000
COMPLEX_LOW_BUDGET_TOKENS = 5_000
LARGE_CONTEXT_TOKENS = 10_000
SHORT_PROMPT_CHARS = 100

_SIMPLE = re.compile(r"\b(list|format|count|show|get|create|add)", re.IGNORECASE)
_COMPLEX = re.compile(
    r"\b(analy[sz]e|architect|debug|design|implement|optimi[sz]e|refactor|review|test|diagnose"
    r"|strategy)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    model: str
    reasoning: str


def route(prompt: str, context_tokens: int, remaining: int | None) -> RouteDecision:
    """The tier for ``prompt`` with ``context_tokens`` of context and ``remaining`` budget
    tokens (``None``: no budget)."""
    if remaining is not None and remaining < LOW_BUDGET_TOKENS:
        return RouteDecision("haiku", f"budget nearly spent ({remaining} tokens left)")
    if context_tokens > LARGE_CONTEXT_TOKENS:
        return RouteDecision("opus", f"large context ({context_tokens} tokens)")
    if len(prompt) < SHORT_PROMPT_CHARS and (match := _SIMPLE.search(prompt)):
        return RouteDecision("haiku", f"short simple task ({match.group(1).lower()!r})")
    if match := _COMPLEX.search(prompt):
        word = match.group(1).lower()
        if remaining is not None and remaining < COMPLEX_LOW_BUDGET_TOKENS:
            return RouteDecision(
                "haiku", f"complex task ({word!r}) but only {remaining} budget tokens left"
            )
        return RouteDecision("sonnet", f"complex task ({word!r})")
    return RouteDecision("sonnet", "general request")
