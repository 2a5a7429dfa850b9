"""Exercise 1, one endpoint in both modes: ``GET /weather?city=<name>&hours=<n>&stream=<bool>``.

Build it (``from millstream.dualmode import ...``) so that:

1. Without ``stream=true`` it answers one JSON object ``{"city": <name>, "forecast": [...]}``
   with ``hours`` entries (default 6, 1 to 48; anything else is a 422), each
   ``{"hour": h, "temperature_c": t, "conditions": c}`` for ``h`` = 0, 1, ...
2. With ``stream=true`` it sends each entry as an SSE event of type ``forecast``, then one
   event of type ``done`` carrying ``{"city": <name>, "hours": <n>}``.
3. Both modes give the same entries: use ``forecast_entry(city, hour)`` below.

Check your server: ``python -m millstream.dualmode.examples.exercise_1_weather
http://127.0.0.1:8000``. A solution: ``millstream.dualmode.examples.solutions.exercise_1_weather``.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import httpx
import orjson

from ._serve import check_main, require, sse_events

CONDITIONS = ("sunny", "cloudy", "rain", "wind", "fog")


def forecast_entry(city: str, hour: int) -> dict[str, Any]:
    """The (made-up, repeatable) forecast of ``city`` at ``hour``."""
    seed = hashlib.sha256(f"{city.lower()}:{hour}".encode()).digest()
    return {
        "hour": hour,
        "temperature_c": round(-5 + seed[0] / 255 * 35, 1),
        "conditions": CONDITIONS[seed[1] % len(CONDITIONS)],
    }


def check(client: httpx.Client) -> None:
    """Raise ``ExerciseFailed`` unless the server at ``client.base_url`` does the exercise."""
    batch = client.get("/weather", params={"city": "Lisbon", "hours": 4})
    require(batch.status_code == 200, f"batch answer: status {batch.status_code}")
    body = batch.json()
    expected = [forecast_entry("Lisbon", h) for h in range(4)]
    require(body == {"city": "Lisbon", "forecast": expected}, f"batch answer: {body!r}")
    default = client.get("/weather", params={"city": "Oslo"}).json()
    require(len(default.get("forecast", [])) == 6, "hours should default to 6")

    stream = client.get("/weather", params={"city": "Lisbon", "hours": 4, "stream": "true"})
    events = sse_events(stream)
    types = [e.event for e in events]
    require(types == ["forecast"] * 4 + ["done"], f"stream event types: {types}")
    entries = [orjson.loads(e.data) for e in events[:-1]]
    require(entries == expected, f"stream entries differ from the batch: {entries}")
    done = orjson.loads(events[-1].data)
    require(done == {"city": "Lisbon", "hours": 4}, f"done event: {done!r}")

    for hours in ("0", "49", "many"):
        bad = client.get("/weather", params={"city": "Lisbon", "hours": hours})
        require(bad.status_code == 422, f"hours={hours} should be refused with 422")


if __name__ == "__main__":
    sys.exit(check_main(check))
