"""JSON mode (PROTOCOL.md §9.1): one message per JSON value, one array level flattened."""

from __future__ import annotations

import orjson

from ._errors import bad_request

__all__ = ["json_messages", "wrap_json"]


def json_messages(body: bytes, *, allow_empty_array: bool) -> list[bytes]:
    """Validate ``body`` and split it into messages.

    A top-level array yields its elements re-serialized; any other value is stored byte for byte
    (stripped of surrounding whitespace), so single-value appends cost one validation pass.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"body is not valid JSON: {exc}", "invalid_json") from None
    if isinstance(value, list):
        if not value and not allow_empty_array:
            raise bad_request("an empty JSON array appends nothing", "empty_json_array")
        return [orjson.dumps(item) for item in value]
    return [body.strip()]


def wrap_json(payloads: list[bytes]) -> bytes:
    """The response body of a JSON-mode read: every message in one array (§9.1.5).

    One join builds it: the brackets ride on the first and last message, so a 100 kB read is
    copied once, not twice.
    """
    count = len(payloads)
    if count == 0:
        return b"[]"
    if count == 1:
        return b"[" + payloads[0] + b"]"
    return b",".join([b"[" + payloads[0], *payloads[1:-1], payloads[-1] + b"]"])
