"""Example 3, LLM-style token streaming: an OpenAI-compatible ``POST /v1/chat/completions``
that streams ``chat.completion.chunk`` events, a last chunk with ``finish_reason: "stop"`` and
``data: [DONE]`` when the body says ``"stream": true``, and one ``chat.completion`` with
``usage`` when it does not. The "model" replies with the words of the last user message.

``POST /v1/chat/resumable`` is the same generation made durable: send an ``Idempotency-Key``
header, and a dropped stream resumes from ``Last-Event-ID`` without generating again.

    curl -N http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"messages": [{"role": "user", "content": "hello there"}], "stream": true}'
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.responses import Response

from millstream.dualmode import DualModeResponse, ResponseMode, dual_mode
from millstream.log import MemoryStore

from ._serve import serve

app = FastAPI(title="Example 3: LLM-style streaming")
store = MemoryStore()  # where the resumable endpoint keeps its generations


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str = "millstream-echo"
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int = Field(default=64, ge=1, le=4096)
    delay: float = Field(default=0.02, ge=0, le=2, description="seconds per token (demo only)")


def reply_words(request: ChatRequest) -> list[str]:
    last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    return (f"You said: {last}".split())[: request.max_tokens]


def prompt_tokens(request: ChatRequest) -> int:
    return sum(len(m.content.split()) for m in request.messages)


async def completion_chunks(request: ChatRequest) -> AsyncIterator[Any]:
    """``chat.completion.chunk`` dicts: the role, one word each, the stop chunk, ``[DONE]``."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant"})
    for index, word in enumerate(reply_words(request)):
        await asyncio.sleep(request.delay)
        yield chunk({"content": word if index == 0 else f" {word}"})
    yield chunk({}, "stop")
    yield "[DONE]"


def completion(request: ChatRequest, chunks: list[Any]) -> dict[str, Any]:
    """The batch answer, built from the same chunks the stream sends."""
    parts = [c for c in chunks if isinstance(c, dict)]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in parts)
    used = len(text.split())
    return {
        "id": parts[0]["id"],
        "object": "chat.completion",
        "created": parts[0]["created"],
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens(request),
            "completion_tokens": used,
            "total_tokens": prompt_tokens(request) + used,
        },
    }


@app.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest) -> Response:
    mode = ResponseMode.STREAM if body.stream else ResponseMode.BATCH
    return DualModeResponse(
        completion_chunks(body), mode, batch=lambda chunks: completion(body, chunks)
    )


@app.post("/v1/chat/resumable")
@dual_mode(durable=True, store=store, heartbeat=5.0)
async def chat_resumable(body: ChatRequest) -> AsyncIterator[Any]:
    """Mode from ``?stream=``/``Accept``; the generation is kept per ``Idempotency-Key``."""
    async for chunk in completion_chunks(body):
        yield chunk


if __name__ == "__main__":
    serve(app, description=__doc__)
