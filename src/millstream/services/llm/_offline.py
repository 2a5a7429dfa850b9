"""The built-in offline model: deterministic text for demos and tests, never a real LLM.

Only ``millstream serve --llm-offline`` enables it, and every answer says what it is: it starts
with ``[millstream offline model]`` and the model id is ``millstream-offline``. The text is a
fixed function of the prompt and ``max_tokens``, so tests can assert on it exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from ._provider import Finished, Provider, ProviderEvent, ProviderRequest, TextDelta
from ._tokens import estimate_tokens

__all__ = ["OFFLINE_LABEL", "OFFLINE_MODEL_ID", "OfflineProvider", "offline_words"]

OFFLINE_MODEL_ID = "millstream-offline"
OFFLINE_LABEL = "[millstream offline model]"


def offline_words(request: ProviderRequest) -> list[str]:
    """The answer, one word (with its trailing space) per token: the label, then the last user
    message's words back, then ``done.``; cut at ``max_tokens``."""
    last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    words = [*OFFLINE_LABEL.split(), "you", "said:", *last.split()[:200], "done."]
    return [f"{word} " for word in words[: request.max_tokens]]


class OfflineProvider(Provider):
    """See the module docstring; ``token_delay`` paces streamed words (0: as fast as possible)."""

    name = "offline"

    def __init__(self, token_delay: float = 0.0) -> None:
        self.token_delay = token_delay

    def describe(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": OFFLINE_MODEL_ID,
            "note": "built-in deterministic offline model (not a real LLM)",
        }

    async def generate(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        words = offline_words(request)
        full = len(words) < request.max_tokens
        if request.stream:
            for word in words:
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                yield TextDelta(word)
        else:
            yield TextDelta("".join(words))
        prompt = "".join(m["content"] for m in request.messages) + (request.system or "")
        yield Finished("stop" if full else "length", estimate_tokens(prompt), len(words))
