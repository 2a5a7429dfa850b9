"""Instrumentation helpers: time an LLM call and build its event from the provider's response.

Understands the shapes of the OpenAI SDK (chat completions, the Responses API, streamed
``chat.completion.chunk``s with ``stream_options={"include_usage": True}``) and of the
Anthropic SDK (``Message``, and the streamed ``message_start``/``content_block_delta``/
``message_delta`` events), as objects or as plain dicts. Streams record the time to the first
token; token counts come from the usage the provider reports at the end. Telemetry never breaks
the call it observes: the call's own exceptions pass through (recorded as errors), and the SDK's
errors while sending are logged, not raised.

    with client.instrument(service="chat", model="gpt-4o", prompt=text) as call:
        reply = call.record(openai.chat.completions.create(...))

    @client.instrument(service="chat")
    def ask(messages, model="gpt-4o"): ...
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

from ._errors import SentinelError
from ._events import PromptInfo, ResponseInfo, TelemetryEvent

__all__ = ["CostFunction", "Instrumentation", "LLMCall", "prompt_text"]

log = logging.getLogger("millstream.telemetry")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

CostFunction = Callable[[str, int, int], float]  # (model, prompt tokens, completion tokens) -> USD


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``, ``None`` when neither exists."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of parts/blocks with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(t for part in content if isinstance(t := _get(part, "text"), str))
    return ""


def prompt_text(value: Any) -> str:
    """A prompt as text: a string, or chat ``messages`` joined by newlines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text_of(_get(message, "content")) for message in value)
    return str(value)


class LLMCall:
    """One observed call: what ``instrument()`` yields. Feed it the response with ``record``
    (or a stream with ``stream``/``astream``), or set fields by hand before the block ends."""

    def __init__(
        self,
        *,
        service: str,
        model: str | None,
        prompt: str,
        prompt_tokens: int | None,
        cost_usd: float | CostFunction | None,
        metadata: dict[str, str],
        trace_id: str | None,
        span_id: str | None,
    ) -> None:
        self.service = service
        self.model = model
        self.prompt = prompt
        self.prompt_tokens = prompt_tokens
        self.completion_tokens: int | None = None
        self.response_text = ""
        self.finish_reason = "stop"
        self.cost_usd = cost_usd
        self.metadata = dict(metadata)
        self.trace_id = trace_id
        self.span_id = span_id
        self.errors: list[str] = []
        self._parts: list[str] = []
        self._start = time.perf_counter()
        self._first_token: float | None = None

    def record(self, response: T) -> T:
        """Take text, finish reason, usage, model and id from a complete response."""
        usage = _get(response, "usage")
        self._usage(usage)
        self._identity(response)
        choices = _get(response, "choices")
        content = _get(response, "content")
        if isinstance(choices, list) and choices:  # OpenAI chat completion
            self.metadata.setdefault("provider", "openai")
            choice = choices[0]
            message = _get(choice, "message")
            self.response_text = _text_of(_get(message, "content")) or _text_of(
                _get(choice, "text")
            )
            self.finish_reason = _get(choice, "finish_reason") or self.finish_reason
        elif isinstance(content, list):  # Anthropic message
            self.metadata.setdefault("provider", "anthropic")
            self.response_text = _text_of(content)
            self.finish_reason = _get(response, "stop_reason") or self.finish_reason
        elif isinstance(text := _get(response, "output_text"), str):  # OpenAI Responses API
            self.metadata.setdefault("provider", "openai")
            self.response_text = text
            status = _get(response, "status")
            self.finish_reason = "stop" if status in (None, "completed") else str(status)
        return response

    def stream(self, chunks: Iterable[T]) -> Iterator[T]:
        """Pass a streamed response through, observing each chunk."""
        for chunk in chunks:
            self._chunk(chunk)
            yield chunk

    async def astream(self, chunks: AsyncIterable[T]) -> AsyncIterator[T]:
        """``stream`` for async iterators."""
        async for chunk in chunks:
            self._chunk(chunk)
            yield chunk

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        prompt = _int(_get(usage, "prompt_tokens"))
        if prompt is None:
            prompt = _int(_get(usage, "input_tokens"))
        completion = _int(_get(usage, "completion_tokens"))
        if completion is None:
            completion = _int(_get(usage, "output_tokens"))
        if prompt is not None:
            self.prompt_tokens = prompt
        if completion is not None:
            self.completion_tokens = completion

    def _identity(self, response: Any) -> None:
        model = _get(response, "model")
        if isinstance(model, str) and model:
            self.metadata.setdefault("response_model", model)
            if self.model is None:
                self.model = model
        response_id = _get(response, "id")
        if isinstance(response_id, str) and response_id:
            self.metadata.setdefault("response_id", response_id)

    def _token(self, text: Any) -> None:
        if isinstance(text, str) and text:
            if self._first_token is None:
                self._first_token = time.perf_counter()
            self._parts.append(text)

    def _chunk(self, chunk: Any) -> None:
        self.metadata["streamed"] = "true"
        kind = _get(chunk, "type")
        if isinstance(kind, str) and kind.startswith(("message_", "content_block_")):
            self._anthropic_event(kind, chunk)
            return
        self.metadata.setdefault("provider", "openai")
        self._identity(chunk)
        self._usage(_get(chunk, "usage"))
        choices = _get(chunk, "choices")
        if isinstance(choices, list) and choices:
            choice = choices[0]
            delta = _get(choice, "delta")
            self._token(_get(delta, "content"))
            reason = _get(choice, "finish_reason")
            if reason:
                self.finish_reason = reason
        self.response_text = "".join(self._parts)

    def _anthropic_event(self, kind: str, event: Any) -> None:
        self.metadata.setdefault("provider", "anthropic")
        if kind == "message_start":
            message = _get(event, "message")
            self._identity(message)
            self._usage(_get(message, "usage"))
        elif kind == "content_block_delta":
            self._token(_get(_get(event, "delta"), "text"))
        elif kind == "message_delta":
            reason = _get(_get(event, "delta"), "stop_reason")
            if reason:
                self.finish_reason = reason
            output = _int(_get(_get(event, "usage"), "output_tokens"))
            if output is not None:
                self.completion_tokens = output
        self.response_text = "".join(self._parts)

    def fail(self, exc: BaseException) -> None:
        """Record that the call raised ``exc``."""
        self.errors.append(f"{type(exc).__name__}: {exc}")
        self.metadata.setdefault("error_type", type(exc).__name__)
        self.finish_reason = "error"

    def event(self) -> TelemetryEvent:
        """The event for the call so far (latency measured now)."""
        now = time.perf_counter()
        if self._first_token is not None:
            self.metadata["time_to_first_token_ms"] = (
                f"{(self._first_token - self._start) * 1000:.3f}"
            )
        prompt_tokens = self.prompt_tokens
        completion_tokens = self.completion_tokens
        if prompt_tokens is None or completion_tokens is None:
            self.metadata["tokens_estimated"] = "true"  # ~4 characters per token
        if prompt_tokens is None:
            prompt_tokens = math.ceil(len(self.prompt) / 4)
        if completion_tokens is None:
            completion_tokens = math.ceil(len(self.response_text) / 4)
        model = self.model or "unknown"
        cost = self.cost_usd
        if callable(cost):
            cost = cost(model, prompt_tokens, completion_tokens)
        return TelemetryEvent(
            service_name=self.service,
            model=model,
            prompt=PromptInfo(text=self.prompt, tokens=prompt_tokens),
            response=ResponseInfo(
                text=self.response_text, tokens=completion_tokens, finish_reason=self.finish_reason
            ),
            latency_ms=(now - self._start) * 1000,
            cost_usd=0.0 if cost is None else cost,
            trace_id=self.trace_id,
            span_id=self.span_id,
            metadata=self.metadata,
            errors=self.errors,
        )


class Instrumentation:
    """``client.instrument(...)``: a context manager (sync or async) yielding an ``LLMCall``,
    or a decorator for a function returning a provider response (its ``messages``/``prompt``/
    ``input`` and ``model`` keyword arguments fill in the prompt and model)."""

    def __init__(
        self,
        client: Any,
        *,
        service: str,
        model: str | None = None,
        prompt: Any = None,
        prompt_tokens: int | None = None,
        cost_usd: float | CostFunction | None = None,
        metadata: dict[str, str] | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> None:
        self._client = client
        self._fields: dict[str, Any] = {
            "service": service,
            "model": model,
            "prompt": prompt_text(prompt),
            "prompt_tokens": prompt_tokens,
            "cost_usd": cost_usd,
            "metadata": metadata or {},
            "trace_id": trace_id,
            "span_id": span_id,
        }
        self._call: LLMCall | None = None

    def _new_call(self, overrides: Mapping[str, Any] | None = None) -> LLMCall:
        fields = dict(self._fields)
        if overrides:
            prompt = overrides.get("messages", overrides.get("prompt", overrides.get("input")))
            if prompt is not None and not fields["prompt"]:
                fields["prompt"] = prompt_text(prompt)
            if isinstance(overrides.get("model"), str) and fields["model"] is None:
                fields["model"] = overrides["model"]
        return LLMCall(**fields)

    def _emit(self, call: LLMCall, exc: BaseException | None) -> TelemetryEvent | None:
        if exc is not None:
            call.fail(exc)
        try:
            return call.event()
        except SentinelError as error:
            log.warning("telemetry event not built: %s", error)
            return None

    def _send_nowait(self, event: TelemetryEvent | None) -> None:
        if event is None:
            return
        try:
            self._client.send_nowait(event)
        except SentinelError as error:
            log.warning("telemetry event not sent: %s", error)

    async def _send_async(self, event: TelemetryEvent | None) -> None:
        if event is None:
            return
        try:
            result = self._client.send(event)
            if inspect.isawaitable(result):
                await result
        except SentinelError as error:
            log.warning("telemetry event not sent: %s", error)

    def __enter__(self) -> LLMCall:
        self._call = self._new_call()
        return self._call

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._call is not None
        self._send_nowait(self._emit(self._call, exc))
        self._call = None

    async def __aenter__(self) -> LLMCall:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._call is not None
        await self._send_async(self._emit(self._call, exc))
        self._call = None

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                call = self._new_call(kwargs)
                try:
                    response = await function(*args, **kwargs)
                except BaseException as exc:
                    await self._send_async(self._emit(call, exc))
                    raise
                call.record(response)
                await self._send_async(self._emit(call, None))
                return response

            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            call = self._new_call(kwargs)
            try:
                response = function(*args, **kwargs)
            except BaseException as exc:
                self._send_nowait(self._emit(call, exc))
                raise
            call.record(response)
            self._send_nowait(self._emit(call, None))
            return response

        return cast(F, run)
