"""The Sentinel's validation: the fast path never accepts what the full validation refuses and
reads the same values; limits; masking."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millstream.services.sentinel import mask_pii
from millstream.services.sentinel._detectors import Call
from millstream.services.sentinel._validation import fast_call, parse_call, sanitized, validate
from millstream.telemetry import ValidationError

from .workload import generate

BASE = generate(calls_per_pair=1).events[0].to_dict()
FIELDS = [
    ("event_id",),
    ("timestamp",),
    ("service_name",),
    ("model",),
    ("trace_id",),
    ("span_id",),
    ("latency_ms",),
    ("cost_usd",),
    ("metadata",),
    ("errors",),
    ("prompt",),
    ("response",),
    ("prompt", "tokens"),
    ("prompt", "text"),
    ("prompt", "embedding"),
    ("response", "tokens"),
    ("response", "finish_reason"),
]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(
        [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00+02:00",
            "12345678-1234-5678-1234-567812345678",
            "{12345678-1234-5678-1234-567812345678}",
            "1234567812345678123456781234567",
            700_000,
            128_001,
            100.5,
            "x" * 100_001,
        ]
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
)


def mutate(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = orjson.loads(orjson.dumps(BASE))
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return data


def same(a: Call, b: Call) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in Call.__slots__)


@settings(max_examples=400)
@given(st.sampled_from(FIELDS), values | st.just(...))
def test_fast_path_agrees_with_the_full_validation(path: tuple[str, ...], value: Any) -> None:
    data = mutate(path, value)
    fast = fast_call(data)
    try:
        full = Call.of(validate(data))
    except ValidationError:
        assert fast is None, data
        return
    if fast is not None:
        assert same(fast, full)


def test_parse_call_reasons() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_call(b"{")
    with pytest.raises(ValidationError, match="exceeds 600000"):
        parse_call(orjson.dumps({**BASE, "latency_ms": 600_001}))
    with pytest.raises(ValidationError, match="total tokens 128001 exceed 128000"):
        parse_call(orjson.dumps(mutate(("prompt", "tokens"), 128_001 - BASE["response"]["tokens"])))
    ok = parse_call(orjson.dumps({**BASE, "latency_ms": 600_000, "cost_usd": 100}))
    assert ok.latency == 600_000


def test_masking() -> None:
    text = "mail ann.lee+x@mail.example.org, card 4111-1111-1111-1111, ssn 123-45-6789, year 2024"
    masked = mask_pii(text)
    assert masked == (
        "mail [EMAIL_REDACTED], card [NUMBER_REDACTED], ssn [SSN_REDACTED], year 2024"
    )
    event = {
        **BASE,
        "metadata": {
            "region": "eu",
            "API_KEY": "k",
            "user_password": "p",
            "access-token": "t",
            "time_to_first_token_ms": "12.5",
        },
    }
    event["prompt"] = {**BASE["prompt"], "text": "call +1 415 555 0100 x"}
    shown = sanitized(event)
    assert shown["metadata"] == {"region": "eu", "time_to_first_token_ms": "12.5"}
    assert "555" not in shown["prompt"]["text"]
    assert event["metadata"]["API_KEY"] == "k"  # the original is untouched
