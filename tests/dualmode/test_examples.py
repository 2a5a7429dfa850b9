"""The seed's examples and exercise solutions, run as users run them (``python -m ...``), over
real HTTP; each exercise's checker passes against its solution and fails against other apps."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from millstream.dualmode.examples import (
    exercise_1_weather,
    exercise_2_progress,
    exercise_3_completions,
)
from millstream.dualmode.examples._serve import ExerciseFailed, sse_events
from servers import ServerProcess

PACKAGE = "millstream.dualmode.examples"
SSE = {"accept": "text/event-stream"}


def run_app(module: str) -> Iterator[httpx.Client]:
    server = ServerProcess([sys.executable, "-m", f"{PACKAGE}.{module}", "--port", "0"])
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def basic() -> Iterator[httpx.Client]:
    yield from run_app("basic_streaming")


def data(response: httpx.Response) -> list[object]:
    return [orjson.loads(e.data) for e in sse_events(response)]


def test_example_1_basic_streaming(basic: httpx.Client) -> None:
    numbers = basic.get("/numbers", params={"count": 4, "delay": 0})
    assert numbers.headers["cache-control"] == "no-cache"
    assert numbers.headers["x-accel-buffering"] == "no"
    assert data(numbers) == [{"number": n, "square": n * n} for n in range(1, 5)]

    events = sse_events(basic.get("/events", params={"count": 3, "delay": 0}, headers=SSE))
    assert [(e.event, e.id) for e in events] == [("tick", "0"), ("tock", "1"), ("tick", "2")]
    assert basic.get("/events", params={"count": 2, "delay": 0}).json()[1]["index"] == 1

    countdown = sse_events(basic.get("/countdown", params={"start": 3, "delay": 0}, headers=SSE))
    assert [e.event for e in countdown] == ["countdown"] * 3 + ["complete"]
    assert [orjson.loads(e.data).get("remaining") for e in countdown[:3]] == [3, 2, 1]
    assert basic.get("/countdown", params={"start": 2, "delay": 0}).json()[-1] == {
        "message": "liftoff"
    }
    assert basic.get("/numbers", params={"count": 0}).status_code == 422


def test_example_2_mode_detection() -> None:
    for client in run_app("mode_detection"):
        items = client.get("/items/simple").json()
        assert len(items) == 5
        assert data(client.get("/items/simple", params={"stream": "true"})) == items
        assert client.get("/items/header").json() == items
        assert data(client.get("/items/header", headers=SSE)) == items
        assert data(client.get("/items/negotiate", params={"format": "stream"})) == items
        assert client.get("/items/negotiate", params={"stream": "false"}, headers=SSE).json()
        report = client.get("/service/report", params={"rows": 3}).json()
        assert report == {
            "rows": [{"row": r, "value": r * 1.5} for r in range(3)],
            "count": 3,
            "total": 4.5,
        }
        rows = data(client.get("/service/report", params={"rows": 3}, headers={"x-stream": "1"}))
        assert rows == report["rows"]


def test_example_3_llm_streaming() -> None:
    ask = {"messages": [{"role": "user", "content": "hello there friend"}], "delay": 0}
    for client in run_app("llm_streaming"):
        stream = client.post("/v1/chat/completions", json={**ask, "stream": True})
        events = sse_events(stream)
        assert events[-1].data == "[DONE]"
        chunks = [orjson.loads(e.data) for e in events[:-1]]
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
        assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert text == "You said: hello there friend"

        batch = client.post("/v1/chat/completions", json=ask).json()
        assert batch["object"] == "chat.completion"
        assert batch["choices"][0]["message"] == {"role": "assistant", "content": text}
        assert batch["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}

        keyed = {"idempotency-key": "chat-1"}
        first = client.post("/v1/chat/resumable?stream=true", json=ask, headers=keyed)
        ids = [e.id for e in sse_events(first)]
        resumed = client.post(
            "/v1/chat/resumable?stream=true", json=ask, headers={**keyed, "last-event-id": ids[2]}
        )
        assert [e.id for e in sse_events(resumed)] == ids[3:]
        assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422


def test_example_4_backpressure() -> None:
    for client in run_app("backpressure"):
        bounded = data(client.get("/stream/bounded", params={"items": 12, "consume_delay": 0.01}))
        assert [b["item"] for b in bounded] == list(range(12))  # type: ignore[index]
        stats = client.get("/stats").json()
        assert 1 <= stats["max_queue_depth"] <= stats["queue_size"]

        timeouts = sse_events(
            client.get("/stream/timeouts", params={"items": 6, "slow_every": 3}, headers=SSE)
        )
        assert [e.event for e in timeouts] == ["message", "message", "timeout"] * 2

        # Both streams hold a slot from their response head on (and hang up on leaving).
        long = {"count": 40}
        with (
            client.stream("GET", "/stream/limited", params=long) as one,
            client.stream("GET", "/stream/limited", params=long) as two,
        ):
            assert one.status_code == two.status_code == 200
            third = client.get("/stream/limited")
            assert third.status_code == 429
            assert third.headers["retry-after"] == "1"
        deadline = time.monotonic() + 10
        while client.get("/stream/limited", params={"count": 1}).status_code == 429:
            assert time.monotonic() < deadline, "the slots were never given back"
            time.sleep(0.05)

        feed = client.get("/stream/feed/wait", params={"events": 500}, headers=SSE)
        assert len(sse_events(feed)) == 500
        flood = {"events": 5000, "stream": "true"}
        with client.stream("GET", "/stream/feed/drop_oldest", params=flood) as slow:
            assert slow.status_code == 200
            deadline = time.monotonic() + 30
            while client.get("/stats").json()["feeds"]["drop_oldest"]["active"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        stats = client.get("/stats").json()
        assert stats["feeds"]["wait"]["sent"] == 500
        assert stats["cleanups"]["cleaned_up"] >= 2


@pytest.mark.parametrize(
    ("exercise", "solution"),
    [
        (exercise_1_weather, "solutions.exercise_1_weather"),
        (exercise_2_progress, "solutions.exercise_2_progress"),
        (exercise_3_completions, "solutions.exercise_3_completions"),
    ],
)
def test_exercise_solutions_pass_their_checker(exercise: object, solution: str) -> None:
    for client in run_app(solution):
        exercise.check(client)  # type: ignore[attr-defined]


def test_an_exercise_checker_can_fail(basic: httpx.Client) -> None:
    for check in (
        exercise_1_weather.check,
        exercise_2_progress.check,
        exercise_3_completions.check,
    ):
        with pytest.raises(ExerciseFailed):
            check(basic)
