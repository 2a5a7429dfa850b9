"""``track``'s fast path (``_track.tracked``): for any arguments it refuses exactly what
``TelemetryEvent`` refuses, with the same message, and what it queues encodes to exactly the
bytes of the ``TelemetryEvent`` those arguments make (its own id and time aside)."""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from millstream.telemetry import TelemetryEvent, ValidationError
from millstream.telemetry._track import build_event, encode, tracked


class Count(enum.IntEnum):  # an int subclass: valid, but not for the fast path
    TEN = 10


strings = st.text(max_size=20)
names = st.text(min_size=1, max_size=20)
amounts = st.floats(min_value=0, max_value=1e6) | st.integers(min_value=0, max_value=10**6)
tokens = st.integers(min_value=0, max_value=10**6)
# one valid value per argument of track, in order
valid = st.tuples(
    names,  # service
    names,  # model
    strings,  # prompt
    strings,  # response
    amounts,  # latency_ms
    tokens,  # prompt_tokens
    tokens,  # completion_tokens
    amounts,  # cost_usd
    strings,  # finish_reason
    st.none() | strings,  # trace_id
    st.none() | strings,  # span_id
    st.none() | st.dictionaries(strings, strings, max_size=3),  # metadata
    st.none() | st.lists(strings, max_size=3),  # errors
    st.none() | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    st.none() | st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
)
# values some argument may get instead: wrong types, bounds, subclasses, odd containers
odd = st.sampled_from(
    [
        None,
        "",
        "x" * 100_001,
        -1,
        -0.5,
        True,
        Count.TEN,
        float("nan"),
        float("inf"),
        "1.5",
        7,
        {"k": 1},
        {1: "v"},
        {},
        [],
        ["e", 2],
        ("a",),
        [float("nan")],
        "text",
    ]
)
calls = st.builds(
    lambda call, changes: tuple(changes.get(i, value) for i, value in enumerate(call)),
    valid,
    st.dictionaries(st.integers(min_value=0, max_value=14), odd, max_size=2),
)


def outcome(make: Any) -> tuple[str, Any]:
    try:
        return "ok", make()
    except ValidationError as exc:
        return "error", exc.message


@given(calls)
def test_the_fast_path_refuses_and_encodes_exactly_as_the_event(call: tuple[Any, ...]) -> None:
    before = datetime.utcfromtimestamp(time.time()) - timedelta(seconds=1)
    slow, event = outcome(lambda: build_event(*call))
    fast, item = outcome(lambda: tracked(True, *call))
    assert (fast, slow) == (slow, slow)
    if slow == "error":
        assert item == event  # the same message
        return
    wire = encode(item)
    sent = json.loads(wire)
    stamp = datetime.fromisoformat(sent["timestamp"].removesuffix("Z"))
    assert before <= stamp <= datetime.utcfromtimestamp(time.time()) + timedelta(seconds=1)
    assert UUID(sent["event_id"]).version == 4
    same = dataclasses.replace(event, event_id=UUID(sent["event_id"]), timestamp=stamp)
    assert wire == same.to_json()


def test_plain_calls_take_the_fast_path_and_others_the_event() -> None:
    plain = ("svc", "m", "p", "r", 12.5, 3, 4, 0.01, "stop", None, None, {"k": "v"}, ["e"])
    assert type(tracked(True, *plain, None, None)) is tuple
    assert type(tracked(True, *plain, [0.5], None)) is TelemetryEvent  # an embedding
    assert type(tracked(False, *plain, None, None)) is TelemetryEvent  # blocking mode
    subclass = ("svc", "m", "p", "r", 12.5, Count.TEN, 4, 0.01, "stop", None, None, None, None)
    assert type(tracked(True, *subclass, None, None)) is TelemetryEvent
