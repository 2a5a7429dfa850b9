"""Solution to exercise 1: ``@dual_mode`` with a batch builder; the stream ends in ``done``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query

from millstream.dualmode import SSEEvent, dual_mode

from .._serve import serve
from ..exercise_1_weather import forecast_entry

app = FastAPI(title="Exercise 1: weather in both modes")


def as_forecast(items: list[dict[str, Any]]) -> dict[str, Any]:
    done = items[-1]
    return {"city": done["city"], "forecast": items[:-1]}


@app.get("/weather")
@dual_mode(batch=as_forecast)
async def weather(
    city: str = Query(min_length=1, max_length=100), hours: int = Query(default=6, ge=1, le=48)
) -> AsyncIterator[SSEEvent]:
    for hour in range(hours):
        yield SSEEvent(forecast_entry(city, hour), event="forecast")
    yield SSEEvent({"city": city, "hours": hours}, event="done")


if __name__ == "__main__":
    serve(app, description=__doc__)
