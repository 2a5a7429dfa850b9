"""A seeded synthetic LLM workload with labelled faults, for the detectors' precision and recall.

Six (service, model) pairs make calls 100 ms apart (event time). Normal calls: lognormal latency
around 300-900 ms, normal token counts, cost proportional to tokens at the model's price, 2%
errors. Injected, with ground truth:

- latency spikes: 0.5% of calls take 4-10x longer (point faults);
- token spikes: 0.5% of calls have 4-8x the prompt tokens, and so cost as much more (point
  faults, labelled ``token_usage_spike`` and ``cost_anomaly``);
- cost drift: three pairs' price rises 15% for 1,000-1,500 calls (episodes);
- distribution shift: two pairs' answers grow longer (completion tokens 200 -> 280) and slower
  from some point on (episodes);
- error burst: three pairs fail 30% of calls for 200-300 calls (episodes).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from millstream.telemetry import PromptInfo, ResponseInfo, TelemetryEvent

START = datetime(2026, 1, 1)
PAIRS = [
    ("chat-api", "gpt-4o", 300.0, 2.5e-6),
    ("chat-api", "gpt-4o-mini", 120.0, 0.3e-6),
    ("search", "claude-sonnet", 500.0, 3.0e-6),
    ("search", "gpt-4o", 320.0, 2.5e-6),
    ("agent", "claude-opus", 900.0, 15e-6),
    ("agent", "gpt-4o-mini", 130.0, 0.3e-6),
]


@dataclass
class Episode:
    """A sustained fault on one pair: calls ``start`` to ``end`` (indices in that pair)."""

    kind: str  # "cost_drift" | "shift" | "error_burst"
    service: str
    model: str
    start: int
    end: int


@dataclass
class Workload:
    events: list[TelemetryEvent] = field(default_factory=list)
    point_labels: list[set[str]] = field(default_factory=list)  # per event: injected types
    pair_index: list[int] = field(default_factory=list)  # per event: its index within its pair
    episodes: list[Episode] = field(default_factory=list)


def generate(calls_per_pair: int = 5000, seed: int = 20261202) -> Workload:
    rng = random.Random(seed)
    out = Workload()
    episodes = [
        Episode("cost_drift", "chat-api", "gpt-4o", 2000, 3500),
        Episode("cost_drift", "search", "gpt-4o", 1500, 2500),
        Episode("cost_drift", "agent", "claude-opus", 3000, 4500),
        Episode("shift", "search", "claude-sonnet", 2500, calls_per_pair),
        Episode("shift", "chat-api", "gpt-4o-mini", 3500, calls_per_pair),
        Episode("error_burst", "agent", "gpt-4o-mini", 3000, 3300),
        Episode("error_burst", "chat-api", "gpt-4o", 1200, 1400),
        Episode("error_burst", "search", "claude-sonnet", 1000, 1200),
    ]
    out.episodes = episodes
    streams = []
    for service, model, base_latency, price in PAIRS:
        per_pair: list[tuple[TelemetryEvent, set[str], int]] = []
        for i in range(calls_per_pair):
            labels: set[str] = set()
            active = {
                e.kind
                for e in episodes
                if (e.service, e.model) == (service, model) and e.start <= i < e.end
            }
            prompt_tokens = max(1, int(rng.gauss(400, 40)))
            completion_mean, completion_sd = (280, 45) if "shift" in active else (200, 30)
            completion_tokens = max(1, int(rng.gauss(completion_mean, completion_sd)))
            latency = base_latency * math.exp(rng.gauss(0, 0.25))
            latency *= completion_tokens / 200
            if rng.random() < 0.005:
                latency *= rng.uniform(4, 10)
                labels.add("latency_spike")
            if rng.random() < 0.005:
                prompt_tokens *= rng.randint(4, 8)
                labels.update({"token_usage_spike", "cost_anomaly"})
            unit = price * (1.15 if "cost_drift" in active else 1.0)
            cost = (prompt_tokens + 3 * completion_tokens) * unit * rng.uniform(0.97, 1.03)
            error_rate = 0.3 if "error_burst" in active else 0.02
            errors = ["upstream timeout"] if rng.random() < error_rate else []
            event = TelemetryEvent(
                service_name=service,
                model=model,
                prompt=PromptInfo(text="q", tokens=prompt_tokens),
                response=ResponseInfo(text="a", tokens=completion_tokens, finish_reason="stop"),
                latency_ms=round(latency, 3),
                cost_usd=cost,
                event_id=UUID(int=rng.getrandbits(128), version=4),
                timestamp=START + timedelta(milliseconds=100 * i),
                metadata={"region": "eu-west-1"},
                errors=errors,
            )
            per_pair.append((event, labels, i))
        streams.append(per_pair)
    # interleave the pairs in event-time order (all pairs tick together)
    for i in range(calls_per_pair):
        for per_pair in streams:
            event, labels, index = per_pair[i]
            out.events.append(event)
            out.point_labels.append(labels)
            out.pair_index.append(index)
    return out
