"""The JSON and SSE bodies the gateway sends: the seed's response shape merged with OpenAI's
``chat.completion`` / ``chat.completion.chunk`` objects, so both kinds of clients parse them.

Usage objects carry both vocabularies: ``input_tokens``/``output_tokens`` (seed) and
``prompt_tokens``/``completion_tokens`` (OpenAI), plus ``total_tokens``.
"""

from __future__ import annotations

from typing import Any

import orjson

from millstream.llm._wire import event_id

__all__ = ["completion_body", "merged_usage", "sse_for_record"]


def merged_usage(usage: dict[str, Any]) -> dict[str, int]:
    input_tokens = int(usage.get("input_tokens", 0))
    output_tokens = int(usage.get("output_tokens", 0))
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
    }


def completion_body(
    start: dict[str, Any], content: str, end: dict[str, Any], project: str
) -> dict[str, Any]:
    """A finished generation as the seed's ``Response`` plus an OpenAI ``chat.completion``."""
    return {
        "id": start["id"],
        "object": "chat.completion",
        "created": start["created"],
        "model": start["model"],
        "provider": start["provider"],
        "provider_model": start["provider_model"],
        "content": content,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": end["finish_reason"],
            }
        ],
        "usage": merged_usage(end["usage"]),
        "cost": end["cost"],
        "project_id": project,
        "status": end["status"],
    }


def _chunk(start: dict[str, Any], delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "id": start["id"],
            "object": "chat.completion.chunk",
            "created": start["created"],
            "model": start["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def sse_for_record(start: dict[str, Any], position: int, record: dict[str, Any]) -> bytes:
    """The SSE bytes for the record at ``position``; its ``id`` resumes after it."""
    head = b"id: " + event_id(start["id"], position + 1).encode() + b"\ndata: "
    kind = record.get("type")
    if kind == "start":
        return head + _chunk(start, {"role": "assistant", "content": ""}, None) + b"\n\n"
    if kind == "delta":
        return head + _chunk(start, {"content": record["text"]}, None) + b"\n\n"
    if kind != "end":
        return b""
    out = (
        head
        + _chunk(
            start,
            {},
            record["finish_reason"],
            usage=merged_usage(record["usage"]),
            cost=record["cost"],
            status=record["status"],
        )
        + b"\n\n"
    )
    if record["status"] != "completed":
        error = dict(record.get("error") or {})
        error.setdefault("type", record["status"])
        error["generation_status"] = record["status"]
        error.setdefault("message", f"the generation ended {record['status']}")
        out += b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    return out + b"data: [DONE]\n\n"
