"""The telemetry SDK and the Sentinel, measured on real servers, side by side with peers.

    .venv/bin/python benchmarks/telemetry.py [--quick]

1. ``track()`` on the caller's thread: p50/p99/p99.9 µs per call, the non-blocking client
   (millstream's default) against the upstream behaviour (``blocking=True``: wait for the ack),
   both on a durable ``millstream serve``; once in a tight loop (the sender thread competes for
   the GIL on every call) and once paced at 1,000 calls/s (an application's rhythm).
2. Events/s sustained into a broker by one non-blocking client (all acknowledged): durable
   millstream (fsync) against Tansu in memory.
3. The Sentinel keeping up: a separate process produces telemetry with librdkafka at a fixed
   rate into a durable ``millstream serve`` while the Sentinel analyses it in the same server;
   its lag (events stored but not yet analysed) is sampled from ``/health``.

Prints one Markdown table per part and writes them to ``benchmarks/results/telemetry-*.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from millstream.telemetry import (  # noqa: E402
    PromptInfo,
    ResponseInfo,
    SentinelClient,
    TelemetryEvent,
)
from sentinel.workload import generate  # noqa: E402
from telemetry.brokers import Millstream, Tansu  # noqa: E402


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": ordered[-1] / 1000}


def track_args(i: int) -> dict[str, Any]:
    return {
        "service": "bench",
        "model": "gpt-4o",
        "prompt": "What is the capital of France?",
        "response": "Paris.",
        "latency_ms": 100.0 + i % 50,
        "prompt_tokens": 8,
        "completion_tokens": 2,
        "cost_usd": 0.0001,
        "metadata": {"i": str(i)},
    }


def measure_track(
    bootstrap: str, spool: str, calls: int, *, blocking: bool, rate: float
) -> dict[str, float]:
    client = SentinelClient(
        brokers=[bootstrap], topic="bench-track", blocking=blocking, spool_dir=spool
    )
    try:
        for i in range(200):  # connect and warm up
            client.track(**track_args(i))
        client.flush(30)
        samples: list[int] = []
        interval = 1 / rate if rate else 0.0
        next_at = time.perf_counter()
        for i in range(calls):
            if interval:  # an application waits on I/O between calls: sleep, do not spin
                next_at += interval
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            started = time.perf_counter_ns()
            client.track(**track_args(i))
            samples.append(time.perf_counter_ns() - started)
        client.flush(60)
        result = percentiles(samples)
        result["dropped"] = client.stats().dropped
        return result
    finally:
        client.close()


def measure_sustained(bootstrap: str, spool: str, events: int, **settings: Any) -> float:
    batch = [
        TelemetryEvent(
            service_name="bench",
            model="gpt-4o",
            prompt=PromptInfo("What is the capital of France?", 8),
            response=ResponseInfo("Paris.", 2, "stop"),
            latency_ms=100.0 + i % 50,
            cost_usd=0.0001,
        )
        for i in range(events)
    ]
    client = SentinelClient(
        brokers=[bootstrap], topic="bench-sustained", spool_dir=spool, queue_size=events, **settings
    )
    try:
        client.send(batch[0])
        client.flush(30)
        started = time.perf_counter()
        for event in batch[1:]:
            client.send(event)
        client.flush(300)
        elapsed = time.perf_counter() - started
        assert client.stats().sent == events, client.stats()
        return (events - 1) / elapsed
    finally:
        client.close()


def produce_at_rate(bootstrap: str, rate: int, seconds: float, done: Any) -> None:
    """The load generator (its own process): librdkafka at ``rate`` events/s."""
    from confluent_kafka import Producer

    payloads = [
        e.to_json() for e in generate(calls_per_pair=max(1, int(rate * seconds) // 6 + 1)).events
    ]
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    total = int(rate * seconds)
    started = time.perf_counter()
    for i in range(total):
        due = started + i / rate
        while time.perf_counter() < due:
            producer.poll(0)
        while True:
            try:
                producer.produce("llm-telemetry", payloads[i % len(payloads)])
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    done.value = time.perf_counter() - started


def measure_sentinel(server: Millstream, rate: int, seconds: float) -> dict[str, float]:
    def health() -> dict[str, Any]:
        return httpx.get(f"{server.url}/health", timeout=30).json()["services"]["sentinel"]

    done = multiprocessing.Value("d", 0.0)
    loadgen = multiprocessing.Process(
        target=produce_at_rate, args=(server.bootstrap, rate, seconds, done)
    )
    started = time.perf_counter()
    loadgen.start()
    lags: list[int] = []
    while loadgen.is_alive():
        lags.append(health()["lag"])
        time.sleep(0.5)
    loadgen.join()
    produced_in = done.value
    total = int(rate * seconds)
    while (h := health())["processed"] + h["dead_letters"] < total:
        lags.append(h["lag"])
        time.sleep(0.1)
    analysed_in = time.perf_counter() - started
    return {
        "target_rate": rate,
        "produced_rate": total / produced_in,
        "analysed_rate": total / analysed_in,
        "lag_median": statistics.median(lags) if lags else 0,
        "lag_max": max(lags) if lags else 0,
        "drain_after_producer_s": analysed_in - produced_in,
        "anomalies": h["anomalies"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller work, about a minute")
    args = parser.parse_args()
    calls = 5_000 if args.quick else 50_000
    sustained = 20_000 if args.quick else 200_000
    seconds = 3.0 if args.quick else 10.0
    lines: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    load = os.getloadavg()[0]
    out(f"# Telemetry benchmarks, {datetime.now(UTC).isoformat(timespec='seconds')}")
    version = platform.python_version()
    out(f"{os.cpu_count()} cores, load average {load:.1f} at start, python {version}")
    work = Path(tempfile.mkdtemp(prefix="telemetry-bench-"))
    with_server = Millstream(work / "data")
    with_server.start()
    tansu = Tansu()
    tansu.start()
    try:
        out("\n## track() on the caller's thread, durable millstream (µs per call)\n")
        out("| client | rhythm | p50 | p99 | p99.9 | max | dropped |")
        out("|---|---|---:|---:|---:|---:|---:|")
        results = {}
        for blocking in (False, True):
            for rate in (0.0, 1000.0):
                n = calls if not blocking else min(calls, 2_000)
                r = measure_track(
                    with_server.bootstrap, str(work / "spool"), n, blocking=blocking, rate=rate
                )
                results[(blocking, rate)] = r
                name = (
                    "upstream behaviour (blocking=True)" if blocking else "non-blocking (default)"
                )
                rhythm = "1,000 calls/s" if rate else "tight loop"
                out(
                    f"| {name} | {rhythm} | {r['p50']:.1f} | {r['p99']:.1f} | {r['p999']:.1f} "
                    f"| {r['max']:.0f} | {r['dropped']:.0f} |"
                )
        ratio = results[(True, 1000.0)]["p99"] / results[(False, 1000.0)]["p99"]
        out(f"\np99 at 1,000 calls/s: blocking ÷ non-blocking = {ratio:.0f}×")

        out("\n## Events/s sustained by one non-blocking SentinelClient (all acknowledged)\n")
        out("| broker | events/s |")
        out("|---|---:|")
        durable = measure_sustained(with_server.bootstrap, str(work / "spool"), sustained)
        tansu_rate = measure_sustained(
            tansu.bootstrap, str(work / "spool"), sustained, enable_idempotence=False
        )
        out(f"| millstream, durable (fsync), idempotent acks=all | {durable:,.0f} |")
        out(f"| Tansu 0.6 in memory (acks=all, no idempotence) | {tansu_rate:,.0f} |")
        out(f"\nmillstream ÷ Tansu = {durable / tansu_rate:.2f}×")

        out("\n## The Sentinel analysing telemetry while the same server ingests it\n")
        out("| target/s | produced/s | analysed/s | lag median | lag max | drained after (s) |")
        out("|---:|---:|---:|---:|---:|---:|")
        for rate in (5_000, 20_000):
            r = measure_sentinel(with_server, rate, seconds)
            out(
                f"| {rate:,} | {r['produced_rate']:,.0f} | {r['analysed_rate']:,.0f} | "
                f"{r['lag_median']:,.0f} | {r['lag_max']:,.0f} | "
                f"{r['drain_after_producer_s']:.1f} |"
            )
    finally:
        tansu.stop()
        with_server.stop()
    out(
        f"\nload average at end {os.getloadavg()[0]:.1f}; command: python benchmarks/telemetry.py"
        + (" --quick" if args.quick else "")
    )
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    (results_dir / f"telemetry-{stamp}{'-quick' if args.quick else ''}.md").write_text(
        "\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
