"""Events, builder and enums: upstream's fields, defaults, validation and exact wire bytes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from millstream.telemetry import (
    AnomalyType,
    DetectionMethod,
    PromptInfo,
    ResponseInfo,
    SentinelError,
    Severity,
    TelemetryEvent,
    TelemetryEventBuilder,
    ValidationError,
)

FIXED_ID = UUID("12345678-1234-5678-1234-567812345678")


def make_event(**overrides: object) -> TelemetryEvent:
    fields: dict[str, object] = {
        "service_name": "chat-api",
        "model": "gpt-4",
        "prompt": PromptInfo(text="Hello", tokens=5),
        "response": ResponseInfo(text="Hi!", tokens=10, finish_reason="stop"),
        "latency_ms": 150.5,
        "cost_usd": 0.001,
        "event_id": FIXED_ID,
        "timestamp": datetime(2024, 1, 2, 3, 4, 5, 678901),
    }
    fields.update(overrides)
    return TelemetryEvent(**fields)  # type: ignore[arg-type]


def upstream_bytes(event: TelemetryEvent) -> bytes:
    """What the upstream SDK sends: its to_dict() (naive timestamp isoformat + "Z") through
    json.dumps with default settings, UTF-8; written out here field by field as the oracle."""
    ts = event.timestamp
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    upstream = {
        "event_id": str(event.event_id),
        "timestamp": ts.isoformat() + "Z",
        "service_name": event.service_name,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "model": event.model,
        "prompt": {
            "text": event.prompt.text,
            "tokens": event.prompt.tokens,
            "embedding": event.prompt.embedding,
        },
        "response": {
            "text": event.response.text,
            "tokens": event.response.tokens,
            "finish_reason": event.response.finish_reason,
            "embedding": event.response.embedding,
        },
        "latency_ms": event.latency_ms,
        "cost_usd": event.cost_usd,
        "metadata": event.metadata,
        "errors": event.errors,
    }
    return json.dumps(upstream).encode("utf-8")


def test_wire_bytes_are_pinned() -> None:
    event = make_event(metadata={"region": "us-east-1"}, errors=["boom"], trace_id="t-1")
    assert event.to_json() == (
        b'{"event_id": "12345678-1234-5678-1234-567812345678", '
        b'"timestamp": "2024-01-02T03:04:05.678901Z", "service_name": "chat-api", '
        b'"trace_id": "t-1", "span_id": null, "model": "gpt-4", '
        b'"prompt": {"text": "Hello", "tokens": 5, "embedding": null}, '
        b'"response": {"text": "Hi!", "tokens": 10, "finish_reason": "stop", "embedding": null}, '
        b'"latency_ms": 150.5, "cost_usd": 0.001, "metadata": {"region": "us-east-1"}, '
        b'"errors": ["boom"]}'
    )
    assert event.to_json() == upstream_bytes(event)


def test_timestamp_formats_like_upstream() -> None:
    whole_second = make_event(timestamp=datetime(2024, 1, 1, 0, 0, 0))
    assert whole_second.to_dict()["timestamp"] == "2024-01-01T00:00:00Z"  # isoformat drops .0
    aware = make_event(timestamp=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert aware.to_dict()["timestamp"] == "2024-01-01T00:00:00Z"  # converted, no "+02:00Z"
    fresh = TelemetryEvent(
        service_name="s",
        model="m",
        prompt=PromptInfo("p", 1),
        response=ResponseInfo("r", 1, "stop"),
        latency_ms=1,
        cost_usd=0,
    )
    assert fresh.timestamp.tzinfo is None
    assert abs(fresh.timestamp - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)
    assert fresh.event_id.version == 4


texts = st.text(max_size=50)
amounts = st.floats(
    min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False
) | st.integers(min_value=0, max_value=10**6)


@given(
    prompt=texts,
    response=texts,
    tokens=st.integers(min_value=0, max_value=200_000),
    latency=amounts,
    cost=amounts,
    metadata=st.dictionaries(texts, texts, max_size=3),
    errors=st.lists(texts, max_size=3),
    timestamp=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    embedding=st.none() | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
)
def test_wire_format_matches_upstream_and_round_trips(
    prompt: str,
    response: str,
    tokens: int,
    latency: float,
    cost: float,
    metadata: dict[str, str],
    errors: list[str],
    timestamp: datetime,
    embedding: list[float] | None,
) -> None:
    event = make_event(
        prompt=PromptInfo(prompt, tokens, embedding),
        response=ResponseInfo(response, tokens, "length", embedding),
        latency_ms=latency,
        cost_usd=cost,
        metadata=metadata,
        errors=errors,
        timestamp=timestamp,
    )
    wire = event.to_json()
    assert wire == upstream_bytes(event)
    again = TelemetryEvent.from_json(wire)
    assert again == event
    assert again.to_json() == wire


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PromptInfo("x", -1), "tokens must be >= 0"),
        (lambda: PromptInfo("x" * 100_001, 1), "text must be <= 100000 characters"),
        (lambda: PromptInfo("x", True), "tokens must be an integer"),  # type: ignore[arg-type]
        (lambda: PromptInfo("x", 1, [float("nan")]), "embedding must contain only finite"),
        (lambda: ResponseInfo("x", -5, "stop"), "tokens must be >= 0"),
        (lambda: ResponseInfo("x" * 100_001, 1, "stop"), "text must be <= 100000"),
        (lambda: ResponseInfo("x", 1, None), "finish_reason must be a string"),  # type: ignore[arg-type]
        (lambda: make_event(latency_ms=-0.1), "latency_ms must be >= 0"),
        (lambda: make_event(latency_ms=float("nan")), "latency_ms must be finite"),
        (lambda: make_event(cost_usd=-1), "cost_usd must be >= 0"),
        (lambda: make_event(cost_usd=math.inf), "cost_usd must be finite"),
        (lambda: make_event(service_name=""), "service_name cannot be empty"),
        (lambda: make_event(model=""), "model cannot be empty"),
        (lambda: make_event(event_id="nope"), "event_id is not a UUID"),
        (lambda: make_event(metadata={"n": 1}), "metadata must map strings to strings"),
        (lambda: make_event(errors=[1]), "errors must be a list of strings"),
        (lambda: make_event(trace_id=7), "trace_id must be a string or None"),
    ],
)
def test_every_validation_error(make: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        make()  # type: ignore[operator]
    assert isinstance(caught.value, ValueError)  # upstream raised ValueError: still caught
    assert isinstance(caught.value, SentinelError)
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"prompt": {}, "response": {}}', "is required"),
    ],
)
def test_from_json_rejects_garbage(wire: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TelemetryEvent.from_json(wire)


def test_event_helpers() -> None:
    event = make_event()
    assert event.total_tokens() == 15
    assert not event.has_errors()
    assert event.error_rate() == 0.0
    failed = make_event(errors=["timeout"])
    assert failed.has_errors()
    assert failed.error_rate() == 1.0


def test_builder_builds_the_same_event() -> None:
    built = (
        TelemetryEventBuilder()
        .event_id(FIXED_ID)
        .timestamp(datetime(2024, 1, 2, 3, 4, 5, 678901))
        .service("chat-api")
        .model("gpt-4")
        .prompt(text="Hello", tokens=5)
        .response(text="Hi!", tokens=10, finish_reason="stop")
        .latency(150.5)
        .cost(0.001)
        .metadata({"a": "1"})
        .add_metadata("b", "2")
        .trace_id("t")
        .span_id("s")
        .add_error("e1")
        .build()
    )
    assert built == make_event(
        metadata={"a": "1", "b": "2"}, trace_id="t", span_id="s", errors=["e1"]
    )
    info = (
        TelemetryEventBuilder()
        .service("s")
        .model("m")
        .prompt_info(PromptInfo("p", 1))
        .response_info(ResponseInfo("r", 2, "length"))
        .latency(1)
        .cost(0)
        .errors(["x"])
        .build()
    )
    assert info.response.finish_reason == "length"
    assert info.errors == ["x"]


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("service", "service_name"),
        ("model", "model"),
        ("prompt", "prompt"),
        ("response", "response"),
        ("latency", "latency_ms"),
        ("cost", "cost_usd"),
    ],
)
def test_builder_names_the_missing_field(missing: str, field: str) -> None:
    steps = {
        "service": lambda b: b.service("s"),
        "model": lambda b: b.model("m"),
        "prompt": lambda b: b.prompt("p", 1),
        "response": lambda b: b.response("r", 1, "stop"),
        "latency": lambda b: b.latency(1.0),
        "cost": lambda b: b.cost(0.0),
    }
    builder = TelemetryEventBuilder()
    for name, step in steps.items():
        if name != missing:
            step(builder)
    with pytest.raises(ValidationError, match=f"^{field} is required$"):
        builder.build()


def test_enums_are_their_wire_strings_and_severity_is_ordered() -> None:
    assert [str(s) for s in sorted(Severity, reverse=True)] == ["critical", "high", "medium", "low"]
    assert Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert Severity.CRITICAL >= Severity.HIGH
    assert Severity("high") is Severity.HIGH
    assert Severity.HIGH == "high"
    assert json.dumps({"s": Severity.HIGH}) == '{"s": "high"}'
    assert [t.value for t in AnomalyType] == [
        "latency_spike",
        "throughput_degradation",
        "error_rate_increase",
        "token_usage_spike",
        "cost_anomaly",
        "input_drift",
        "output_drift",
        "concept_drift",
        "embedding_drift",
        "hallucination",
        "quality_degradation",
        "security_threat",
    ]
    assert [m.value for m in DetectionMethod] == [
        "z_score",
        "iqr",
        "mad",
        "cusum",
        "isolation_forest",
        "lstm_autoencoder",
        "one_class_svm",
        "psi",
        "kl_divergence",
        "llm_check",
        "rag",
    ]
    assert Severity.HIGH > "low"  # by rank: alphabetically "high" < "low"
    assert (
        sorted(["low", Severity.CRITICAL, "high"], key=lambda s: Severity(s).rank)[-1] == "critical"
    )
    assert Severity.MEDIUM <= "medium"
