"""Solution to exercise 3: one generator of chunks, streamed or folded into one completion."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.responses import Response

from millstream.dualmode import DualModeResponse, ResponseMode

from .._serve import serve
from ..exercise_3_completions import model_words

app = FastAPI(title="Exercise 3: LLM simulator")
MODEL = "millstream-reverse"


class CompletionRequest(BaseModel):
    prompt: str = Field(min_length=1)
    stream: bool = True
    max_tokens: int = Field(default=50, ge=1, le=2048)


async def chunks(request: CompletionRequest) -> AsyncIterator[Any]:
    ident, created = f"cmpl-{uuid.uuid4().hex[:12]}", int(time.time())
    words, reason = model_words(request.prompt, request.max_tokens)

    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": MODEL,
            "choices": [choice],
        }

    for index, word in enumerate(words):
        await asyncio.sleep(0.005)
        yield chunk(word if index == 0 else f" {word}", None)
    yield chunk("", reason)
    yield "[DONE]"


def completion(request: CompletionRequest, items: list[Any]) -> dict[str, Any]:
    parts = [item for item in items if isinstance(item, dict)]
    text = "".join(p["choices"][0]["text"] for p in parts)
    prompt_tokens, used = len(request.prompt.split()), len(parts) - 1
    return {
        **{k: parts[0][k] for k in ("id", "object", "created", "model")},
        "choices": [
            {
                "text": text,
                "index": 0,
                "logprobs": None,
                "finish_reason": parts[-1]["choices"][0]["finish_reason"],
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": used,
            "total_tokens": prompt_tokens + used,
        },
    }


@app.post("/v1/completions")
async def completions(body: CompletionRequest) -> Response:
    mode = ResponseMode.STREAM if body.stream else ResponseMode.BATCH
    return DualModeResponse(chunks(body), mode, batch=lambda items: completion(body, items))


if __name__ == "__main__":
    serve(app, description=__doc__)
