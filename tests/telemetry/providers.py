"""A fake LLM provider speaking the OpenAI and Anthropic wire formats, served by a real uvicorn
on 127.0.0.1, so the tests drive the official ``openai`` and ``anthropic`` SDKs unmodified.

Answers are deterministic: the reply is ``"echo: <last user message>"`` split into word tokens;
usage counts words. Streams wait ``FIRST_TOKEN_DELAY`` seconds before the first token (so the
time to first token is measurable). The model ``"fail"`` answers 500.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FIRST_TOKEN_DELAY = 0.05


def _reply(messages: list[dict[str, Any]]) -> tuple[list[str], int]:
    last = ""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        if message.get("role") == "user" and isinstance(content, str):
            last = content
    words = f"echo: {last}".split(" ")
    tokens = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    return tokens, prompt_tokens


def _sse(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream")


async def chat_completions(request: Request) -> Response:
    body = await request.json()
    model = body["model"]
    if model == "fail":
        return JSONResponse(
            {"error": {"message": "upstream exploded", "type": "server_error"}}, 500
        )
    tokens, prompt_tokens = _reply(body["messages"])
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(tokens),
        "total_tokens": prompt_tokens + len(tokens),
    }
    created = int(time.time())
    if not body.get("stream"):
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": created,
                "model": f"{model}-2024",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(tokens)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def lines() -> AsyncIterator[str]:
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created}
        base["model"] = f"{model}-2024"
        role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [role]})}\n\n"
        await asyncio.sleep(FIRST_TOKEN_DELAY)
        for token in tokens:
            choice = {"index": 0, "delta": {"content": token}, "finish_reason": None}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        done = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield f"data: {json.dumps({**base, 'choices': [done]})}\n\n"
        if include_usage:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    return _sse(lines())


async def messages(request: Request) -> Response:
    body = await request.json()
    model = body["model"]
    if model == "fail":
        error = {"type": "error", "error": {"type": "api_error", "message": "upstream exploded"}}
        return JSONResponse(error, 500)
    tokens, prompt_tokens = _reply(body["messages"])
    message = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(tokens)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": len(tokens)},
    }
    if not body.get("stream"):
        return JSONResponse(message)

    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    async def lines() -> AsyncIterator[str]:
        start = {**message, "content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": prompt_tokens, "output_tokens": 1}
        yield event("message_start", {"message": start})
        yield event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        await asyncio.sleep(FIRST_TOKEN_DELAY)
        for token in tokens:
            delta = {"type": "text_delta", "text": token}
            yield event("content_block_delta", {"index": 0, "delta": delta})
        yield event("content_block_stop", {"index": 0})
        yield event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(tokens)},
            },
        )
        yield event("message_stop", {})

    return _sse(lines())


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
    ]
)


@contextmanager
def fake_provider() -> Iterator[str]:
    """Serve the fake provider; yields its base URL (``http://127.0.0.1:PORT``)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake provider did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
