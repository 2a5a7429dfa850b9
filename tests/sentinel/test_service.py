"""The Sentinel inside a real ``millstream serve``: telemetry in over Kafka (and REST), anomalies
out over REST, Kafka, HTTP catch-up and SSE, bad events dead-lettered, ``kill -9`` survived
without losing or repeating an anomaly, a 100k burst absorbed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from millstream import stream
from millstream.telemetry import SentinelClient, SentinelConfig, TelemetryEvent
from telemetry.brokers import Millstream, consume, millstream

from .helpers import expected_anomalies, produce, read_all, sentinel_health, wait_processed, wire
from .workload import generate


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Millstream]:
    with millstream(tmp_path / "data") as running:
        yield running


def test_anomalies_reach_every_door(server: Millstream, tmp_path: Path) -> None:
    workload = generate(calls_per_pair=1500)
    config = SentinelConfig(brokers=[server.bootstrap], spool_dir=str(tmp_path / "spool"))
    with SentinelClient(config=config) as client:  # the SDK's defaults, non-blocking
        for event in workload.events:
            client.send(event)
    health = wait_processed(server.url, len(workload.events))
    assert health["status"] == "ok"
    assert health["dead_letters"] == 0

    logged = [TelemetryEvent.from_dict(item) for item in read_all(server.url, "llm-telemetry")]
    expected = [a.to_dict() for a in expected_anomalies(logged, "llm-telemetry")]
    assert len(expected) > 20
    assert health["anomalies"] == len(expected)
    # HTTP catch-up: exactly what an uninterrupted engine emits, in order
    assert read_all(server.url, "llm-anomalies") == orjson.loads(orjson.dumps(expected))
    # Kafka: the same records
    over_kafka = [
        orjson.loads(v) for v in consume(server.bootstrap, "llm-anomalies", len(expected))
    ]
    assert [a["alert_id"] for a in over_kafka] == [a["alert_id"] for a in expected]
    # SSE, live from the start
    seen: list[str] = []
    with stream(f"{server.url}/v1/stream/llm-anomalies", offset="-1", live="sse") as response:
        for item in response.iter_json():
            seen.append(item["alert_id"])
            if len(seen) == len(expected):
                break
    assert seen == [a["alert_id"] for a in expected]
    # REST, newest first, with filters
    rest = httpx.get(f"{server.url}/api/v1/anomalies", params={"limit": 1000}).json()
    assert [a["alert_id"] for a in rest["data"]] == [a["alert_id"] for a in reversed(expected)]
    service = expected[0]["service_name"]
    by_service = httpx.get(
        f"{server.url}/api/v1/anomalies", params={"service": service, "limit": 1000}
    ).json()["data"]
    assert by_service
    assert {a["service_name"] for a in by_service} == {service}
    assert len(by_service) == sum(a["service_name"] == service for a in expected)
    severe = httpx.get(
        f"{server.url}/api/v1/anomalies", params={"severity": "high,critical", "limit": 1000}
    ).json()["data"]
    assert len(severe) == sum(a["severity"] in ("high", "critical") for a in expected)
    model = expected[-1]["model"]
    since = expected[len(expected) // 2]["timestamp"]
    recent = httpx.get(
        f"{server.url}/api/v1/anomalies", params={"model": model, "since": since, "limit": 1000}
    ).json()["data"]
    assert len(recent) == sum(a["model"] == model and a["timestamp"] >= since for a in expected)
    two = httpx.get(f"{server.url}/api/v1/anomalies", params={"limit": 2}).json()
    assert two["count"] == 2


def test_bad_events_are_dead_lettered_and_both_topic_names_read(server: Millstream) -> None:
    good = generate(calls_per_pair=20).events
    valid = good[0].to_dict()
    bad = [
        b"not json at all",
        b"\xff\xfe binary",
        b"[1, 2, 3]",
        orjson.dumps({**valid, "prompt": {"text": "x", "tokens": -1}}),
        orjson.dumps({**valid, "latency_ms": 700_000}),
        orjson.dumps({**valid, "cost_usd": 101}),
        orjson.dumps({k: v for k, v in valid.items() if k != "model"}),
        orjson.dumps({**valid, "metadata": {"n": 1}}),
        orjson.dumps({**valid, "timestamp": "yesterday"}),
    ]
    produce(server.bootstrap, "llm-telemetry", [good[0].to_json(), *bad, good[1].to_json()])
    produce(server.bootstrap, "llm.telemetry", [e.to_json() for e in good[2:]])
    total = len(good) + len(bad)
    health = wait_processed(server.url, total)
    assert health["status"] == "ok"
    assert health["processed"] == len(good)
    assert health["dead_letters"] == len(bad)
    assert set(health["sources"]) >= {"llm-telemetry", "llm.telemetry"}
    letters = read_all(server.url, "llm-telemetry-dlq")
    assert [letter["offset"] for letter in letters] == list(range(1, 1 + len(bad)))
    reasons = [letter["reason"] for letter in letters]
    # llm-telemetry is a JSON topic: a record that is not JSON reads as a JSON string of its text
    assert reasons[:3] == ["event must be a JSON object"] * 3
    assert "not json at all" in letters[0]["payload"]
    assert reasons[3] == "tokens must be >= 0"
    assert "exceeds 600000" in reasons[4]
    assert "exceeds 100" in reasons[5]
    assert reasons[6] == "model is required"
    assert reasons[7] == "metadata must map strings to strings"
    assert "timestamp" in reasons[8]


@pytest.mark.slow
def test_kill_9_neither_loses_nor_repeats_anomalies(tmp_path: Path) -> None:
    workload = generate(calls_per_pair=4000)
    payloads = wire(workload)
    broker = Millstream(tmp_path / "data")
    broker.start()
    try:
        chunk = len(payloads) // 4
        produced = 0
        for cycle in range(3):
            produce(broker.bootstrap, "llm-telemetry", payloads[produced : produced + chunk])
            produced += chunk
            target = produced - chunk // 2  # kill while the Sentinel is mid-way
            deadline = time.monotonic() + 60
            while sentinel_health(broker.url)["processed"] < target:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            broker.kill()
            broker.start()
            assert sentinel_health(broker.url)["status"] == "ok", cycle
        produce(broker.bootstrap, "llm-telemetry", payloads[produced:])
        wait_processed(broker.url, len(payloads))
        got = read_all(broker.url, "llm-anomalies")
        want = orjson.loads(
            orjson.dumps(
                [a.to_dict() for a in expected_anomalies(workload.events, "llm-telemetry")]
            )
        )
        assert [a["alert_id"] for a in got] == [a["alert_id"] for a in want]
        assert got == want
    finally:
        broker.stop()


def test_burst_of_100k_events(server: Millstream, capsys: pytest.CaptureFixture[str]) -> None:
    workload = generate(calls_per_pair=16_667)
    payloads = wire(workload)[:100_000]
    started = time.monotonic()
    produce(server.bootstrap, "llm-telemetry", payloads)
    produced = time.monotonic() - started
    health = wait_processed(server.url, len(payloads), timeout=240)
    done = time.monotonic() - started
    assert health["status"] == "ok"
    assert health["processed"] == 100_000
    with capsys.disabled():
        print(
            f"\nSentinel burst: 100,000 events produced in {produced:.1f} s, all analysed "
            f"{done:.1f} s after the first ({100_000 / done:,.0f} events/s end to end; "
            f"{health['anomalies']} anomalies)"
        )


def test_rest_ingest_and_errors(server: Millstream) -> None:
    api = f"{server.url}/api/v1"
    events = generate(calls_per_pair=3).events
    first = events[0].to_dict()
    first["prompt"]["text"] = "reach me at jane.doe@example.com or 4111 1111 1111 1111"
    first["metadata"]["api_key"] = "sk-secret"
    answer = httpx.post(f"{api}/events", json=first)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 1
    batch = httpx.post(f"{api}/events", json=[e.to_dict() for e in events[1:]])
    assert batch.status_code == 202
    assert batch.json()["accepted"] == len(events) - 1
    wait_processed(server.url, len(events))
    shown = httpx.get(f"{api}/telemetry", params={"limit": 100}).json()["data"]
    assert len(shown) == len(events)
    mine = next(e for e in shown if e["event_id"] == first["event_id"])
    assert "jane.doe" not in mine["prompt"]["text"]
    assert "4111" not in mine["prompt"]["text"]
    assert "api_key" not in mine["metadata"]
    only = httpx.get(f"{api}/telemetry", params={"service": "search"}).json()["data"]
    assert only
    assert {e["service_name"] for e in only} == {"search"}

    def error(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == code

    error(httpx.post(f"{api}/events", content=b"{nope"), 400, "invalid_json")
    error(httpx.post(f"{api}/events", json=[]), 400, "invalid_event")
    error(httpx.post(f"{api}/events", json={"latency_ms": -1}), 400, "invalid_event")
    mixed = httpx.post(f"{api}/events", json=[events[0].to_dict(), {"x": 1}])
    error(mixed, 400, "invalid_event")
    assert mixed.json()["error"]["details"][0]["index"] == 1
    error(httpx.post(f"{api}/events", content=b"x" * (2 << 20)), 413, "payload_too_large")
    error(httpx.post(f"{api}/events", json=[first] * 1001), 400, "too_many_events")
    error(httpx.get(f"{api}/anomalies", params={"limit": "many"}), 400, "invalid_limit")
    error(httpx.get(f"{api}/anomalies", params={"limit": 0}), 400, "invalid_limit")
    error(httpx.get(f"{api}/anomalies", params={"severity": "dire"}), 400, "invalid_severity")
    error(httpx.get(f"{api}/anomalies", params={"since": "soon"}), 400, "invalid_time")
    error(httpx.get(f"{api}/anomalies", params={"anomaly_type": "x"}), 400, "invalid_anomaly_type")
    error(httpx.delete(f"{api}/anomalies"), 405, "method_not_allowed")
    error(httpx.get(f"{api}/events"), 405, "method_not_allowed")
    error(httpx.get(f"{api}/nothing"), 404, "not_found")
    assert sentinel_health(server.url)["processed"] == len(events)  # nothing bad got in


def test_no_sentinel(tmp_path: Path) -> None:
    with millstream(tmp_path / "data", "--no-sentinel") as server:
        assert httpx.get(f"{server.url}/api/v1/anomalies").status_code == 404
        services = httpx.get(f"{server.url}/health").json()["services"]
        assert "sentinel" not in services
