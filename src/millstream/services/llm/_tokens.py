"""Token estimates for what the gateway must decide before a provider has counted: budget
reservations, rate limits, ``auto`` routing, and usage of generations cut short.

About four characters per token is the usual rule of thumb for English with BPE tokenizers;
reservations add ``max_tokens`` on top, and every settled generation uses the provider's count
when it reports one.
"""

from __future__ import annotations

__all__ = ["CHARS_PER_TOKEN", "estimate_prompt", "estimate_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """At least 1 for any text, ``len / 4`` rounded up otherwise."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


#: Tokens a chat format adds per message (role markers) and per request.
PER_MESSAGE_TOKENS = 4
PER_REQUEST_TOKENS = 3


def estimate_prompt(messages: list[dict[str, str]], system: str | None) -> int:
    """Tokens a prompt is likely to cost: each message's text plus its framing."""
    total = PER_REQUEST_TOKENS + (estimate_tokens(system) + PER_MESSAGE_TOKENS if system else 0)
    for message in messages:
        total += estimate_tokens(message["content"]) + PER_MESSAGE_TOKENS
    return total
