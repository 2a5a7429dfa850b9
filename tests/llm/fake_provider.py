"""A fake LLM provider: a real HTTP server on 127.0.0.1 that speaks the Anthropic Messages API
(``POST /v1/messages``) and the OpenAI Chat Completions API (``POST /v1/chat/completions``),
streamed and not, with faults switched on over HTTP.

Run: ``python tests/llm/fake_provider.py [--port 0] [--anthropic-key K] [--openai-key K]``; it
prints ``fake provider listening on http://127.0.0.1:PORT`` once it accepts connections.

Its answer is deterministic: ``tokens`` words ``w0 w1 ...`` (at most ``max_tokens``), one per
stream event, ``token_delay`` seconds apart, the first after ``first_token_delay`` more (a
model's prefill; a non-streamed answer takes both); input tokens are the prompt's characters / 4.

Control (JSON bodies):

- ``POST /_fake/config {"tokens": 8, "token_delay": 0.0, "first_token_delay": 0.0}``
- ``POST /_fake/faults {"kind": ..., "count": N, ...}`` queues a fault for the next ``N``
  provider requests (``count`` -1: until reset). Kinds: ``status`` (``status``, optional
  ``retry_after``, ``error_type``), ``stall`` (``seconds`` before any byte), ``cut`` (streams
  only: drop the connection after ``after`` tokens), ``malformed`` (streams: a garbage event
  after ``after`` tokens), ``stall_mid`` (streams: pause ``seconds`` after ``after`` tokens).
- ``POST /_fake/reset``: no faults, default config, empty log.
- ``GET /_fake/log``: ``{"requests": [{"api", "path", "headers", "body"}, ...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_ids = itertools.count(1)


@dataclass
class Fault:
    kind: str
    count: int = 1
    status: int = 500
    retry_after: str | None = None
    error_type: str | None = None
    seconds: float = 0.0
    after: int = 0


@dataclass
class State:
    anthropic_key: str | None
    openai_key: str | None
    tokens: int = 8
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def take_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        if fault.count > 0:
            fault.count -= 1
            if fault.count == 0:
                self.faults.pop(0)
        return fault


def _prompt_chars(body: dict[str, Any]) -> int:
    total = 0
    system = body.get("system")
    if isinstance(system, str):
        total += len(system)
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if isinstance(part, dict))
    return total


def _words(state: State, body: dict[str, Any]) -> tuple[list[str], str]:
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or 4096
    count = min(state.tokens, int(limit))
    words = [f"w{i} " for i in range(count)]
    return words, "length" if count < state.tokens else "stop"


def _status_error(api: str, fault: Fault) -> web.Response:
    headers = {}
    if fault.retry_after is not None:
        headers["retry-after"] = fault.retry_after
    if api == "anthropic":
        kind = fault.error_type or {
            429: "rate_limit_error",
            529: "overloaded_error",
            401: "authentication_error",
            400: "invalid_request_error",
        }.get(fault.status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
    else:
        kind = fault.error_type or (
            "rate_limit_exceeded" if fault.status == 429 else "server_error"
        )
        body = {"error": {"message": f"fake {kind}", "type": kind, "param": None, "code": kind}}
    return web.json_response(body, status=fault.status, headers=headers)


class FakeProvider:
    def __init__(self, state: State) -> None:
        self.state = state

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/_fake/config", self.config)
        app.router.add_post("/_fake/faults", self.faults)
        app.router.add_post("/_fake/reset", self.reset)
        app.router.add_get("/_fake/log", self.get_log)
        return app

    async def config(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.state.tokens = int(body.get("tokens", self.state.tokens))
        self.state.token_delay = float(body.get("token_delay", self.state.token_delay))
        self.state.first_token_delay = float(
            body.get("first_token_delay", self.state.first_token_delay)
        )
        return web.json_response({"ok": True})

    async def faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.state.faults.append(Fault(**body))
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self.state.faults.clear()
        self.state.log.clear()
        self.state.tokens, self.state.token_delay, self.state.first_token_delay = 8, 0.0, 0.0
        self.state.max_in_flight = self.state.in_flight
        return web.json_response({"ok": True})

    async def get_log(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"requests": self.state.log, "max_in_flight": self.state.max_in_flight}
        )

    async def _begin(
        self, request: web.Request, api: str, key: str | None
    ) -> tuple[dict[str, Any], Fault | None] | web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": {"message": "bad json"}}, status=400)
        self.state.log.append(
            {"api": api, "path": request.path, "headers": dict(request.headers), "body": body}
        )
        if api == "anthropic":
            sent = request.headers.get("x-api-key")
        else:
            sent = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key is not None and sent != key:
            return _status_error(api, Fault("status", status=401))
        fault = self.state.take_fault()
        if fault is not None and fault.kind == "status":
            return _status_error(api, fault)
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
        return body, fault

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "anthropic", self.state.anthropic_key)
        if isinstance(begun, web.Response):
            return begun
        body, fault = begun
        words, finish = _words(self.state, body)
        stop = "max_tokens" if finish == "length" else "end_turn"
        input_tokens = _prompt_chars(body) // 4 + 1
        message_id = f"msg_fake{next(_ids)}"
        if not body.get("stream"):
            await self._pace(len(words))
            return web.json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model"),
                    "content": [{"type": "text", "text": "".join(words)}],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": len(words)},
                }
            )
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        deltas = [
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": w},
                },
            )
            for w in words
        ]
        tail = [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": len(words)},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

        def frame(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        return await self._stream(
            request,
            fault,
            [frame(*e) for e in events],
            [frame(*e) for e in deltas],
            [frame(*e) for e in tail],
        )

    async def openai(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "openai", self.state.openai_key)
        if isinstance(begun, web.Response):
            return begun
        body, fault = begun
        words, finish = _words(self.state, body)
        prompt_tokens = _prompt_chars(body) // 4 + 1
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        completion_id = f"chatcmpl-fake{next(_ids)}"
        created = int(time.time())
        model = body.get("model")
        if not body.get("stream"):
            await self._pace(len(words))
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(words)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
            )

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        head = [chunk({"role": "assistant", "content": ""})]
        deltas = [chunk({"content": w}) for w in words]
        tail = [chunk({}, finish)]
        if (body.get("stream_options") or {}).get("include_usage"):
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            tail.append(b"data: " + json.dumps(data).encode() + b"\n\n")
        tail.append(b"data: [DONE]\n\n")
        return await self._stream(request, fault, head, deltas, tail)

    async def _pace(self, count: int) -> None:
        delay = self.state.first_token_delay + self.state.token_delay * count
        if delay:
            await asyncio.sleep(delay)

    async def _stream(
        self,
        request: web.Request,
        fault: Fault | None,
        head: list[bytes],
        deltas: list[bytes],
        tail: list[bytes],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        self.state.in_flight += 1
        self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
        try:
            await response.write(b"".join(head))
            if self.state.first_token_delay:
                await asyncio.sleep(self.state.first_token_delay)
            for index, data in enumerate(deltas):
                if fault is not None and index == fault.after:
                    if fault.kind == "cut":
                        assert request.transport is not None
                        request.transport.abort()
                        return response
                    if fault.kind == "malformed":
                        await response.write(b"event: content_block_delta\ndata: {not json\n\n")
                    if fault.kind == "stall_mid":
                        await asyncio.sleep(fault.seconds)
                if self.state.token_delay:
                    await asyncio.sleep(self.state.token_delay)
                await response.write(data)
            await response.write(b"".join(tail))
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.state.in_flight -= 1
        return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--anthropic-key", default=None)
    parser.add_argument("--openai-key", default=None)
    args = parser.parse_args()
    state = State(args.anthropic_key, args.openai_key)

    async def run() -> None:
        runner = web.AppRunner(FakeProvider(state).app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"fake provider listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
