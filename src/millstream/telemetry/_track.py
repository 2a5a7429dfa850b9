"""The body of both clients' ``track``: what it costs on the caller's thread, and what it
leaves to the sender.

``build_event`` makes and validates a ``TelemetryEvent`` (blocking mode, and any call the fast
path is unsure of). In non-blocking mode ``queued_call`` instead checks plainly valid arguments
in a few type tests and returns them as a ``Call`` tuple with the call's time: no dataclasses,
UUID or ``datetime`` on the caller's thread. The sender gives the call its ``event_id`` and
encodes it (``encode``) to the same bytes ``TelemetryEvent.to_json`` would. Anything else (an
error to report, an embedding, a subclass of ``int``) goes through ``build_event``, so the
errors and the accepted values are exactly ``TelemetryEvent``'s.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ._events import (
    MAX_TEXT_LENGTH,
    PromptInfo,
    ResponseInfo,
    TelemetryEvent,
    event_dict,
    format_timestamp,
)

__all__ = ["Call", "Queued", "build_event", "encode", "tracked"]

# (time_ns, service, model, prompt, response, latency_ms, prompt_tokens, completion_tokens,
#  cost_usd, finish_reason, trace_id, span_id, metadata, errors)
Call = tuple[Any, ...]
Queued = TelemetryEvent | Call  # what the non-blocking queue holds

_EPOCH = datetime(1970, 1, 1)
_INF = float("inf")
_ONLY_STR = frozenset((str,))


def build_event(
    service: str,
    model: str,
    prompt: str,
    response: str,
    latency_ms: float,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    finish_reason: str,
    trace_id: str | None,
    span_id: str | None,
    metadata: dict[str, str] | None,
    errors: list[str] | None,
    prompt_embedding: list[float] | None,
    response_embedding: list[float] | None,
) -> TelemetryEvent:
    return TelemetryEvent(
        service_name=service,
        model=model,
        prompt=PromptInfo(text=prompt, tokens=prompt_tokens, embedding=prompt_embedding),
        response=ResponseInfo(
            text=response,
            tokens=completion_tokens,
            finish_reason=finish_reason,
            embedding=response_embedding,
        ),
        latency_ms=latency_ms,
        cost_usd=cost_usd,
        trace_id=trace_id,
        span_id=span_id,
        metadata=metadata or {},
        errors=errors or [],
    )


def _plain_amount(value: object) -> bool:
    """A finite number >= 0 of type ``float`` or ``int`` exactly (NaN fails both tests)."""
    kind = type(value)
    return (kind is float or kind is int) and 0 <= value < _INF  # type: ignore[operator]


def _all_str(values: Iterable[object]) -> bool:
    """Every value is a ``str`` exactly (``type`` and a set test run in C: no Python loop)."""
    return _ONLY_STR.issuperset(map(type, values))


def tracked(
    fast: bool,
    service: str,
    model: str,
    prompt: str,
    response: str,
    latency_ms: float,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    finish_reason: str,
    trace_id: str | None,
    span_id: str | None,
    metadata: dict[str, str] | None,
    errors: list[str] | None,
    prompt_embedding: list[float] | None,
    response_embedding: list[float] | None,
) -> Queued:
    """What ``track`` sends: the ``TelemetryEvent`` (which raises ``ValidationError``), or, when
    ``fast`` (non-blocking mode) and the fields are plainly valid, the checked ``Call``."""
    if (
        fast
        and type(service) is str
        and service
        and type(model) is str
        and model
        and type(prompt) is str
        and len(prompt) <= MAX_TEXT_LENGTH
        and type(response) is str
        and len(response) <= MAX_TEXT_LENGTH
        and type(prompt_tokens) is int
        and prompt_tokens >= 0
        and type(completion_tokens) is int
        and completion_tokens >= 0
        and type(finish_reason) is str
        and _plain_amount(latency_ms)
        and _plain_amount(cost_usd)
        and (trace_id is None or type(trace_id) is str)
        and (span_id is None or type(span_id) is str)
        and prompt_embedding is None
        and response_embedding is None
        and (
            not metadata
            or (type(metadata) is dict and _all_str(metadata) and _all_str(metadata.values()))
        )
        and (not errors or (type(errors) is list and _all_str(errors)))
    ):
        return (
            time.time_ns(),
            service,
            model,
            prompt,
            response,
            latency_ms,
            prompt_tokens,
            completion_tokens,
            cost_usd,
            finish_reason,
            trace_id,
            span_id,
            metadata or {},
            errors or [],
        )
    return build_event(
        service,
        model,
        prompt,
        response,
        latency_ms,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        finish_reason,
        trace_id,
        span_id,
        metadata,
        errors,
        prompt_embedding,
        response_embedding,
    )


def encode(item: Queued) -> bytes:
    """The wire bytes of a queued event or call (a call gets its ``event_id`` here)."""
    if type(item) is TelemetryEvent:
        return item.to_json()
    (
        stamp,
        service,
        model,
        prompt,
        response,
        latency_ms,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        finish_reason,
        trace_id,
        span_id,
        metadata,
        errors,
    ) = item  # type: ignore[misc]
    return json.dumps(
        event_dict(
            str(uuid.uuid4()),
            format_timestamp(_EPOCH + timedelta(microseconds=stamp // 1000)),
            service,
            trace_id,
            span_id,
            model,
            prompt,
            prompt_tokens,
            None,
            response,
            completion_tokens,
            finish_reason,
            None,
            latency_ms,
            cost_usd,
            metadata,
            errors,
        )
    ).encode("utf-8")
