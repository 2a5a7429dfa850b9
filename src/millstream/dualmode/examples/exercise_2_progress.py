"""Exercise 2, a progress reporter: ``POST /process`` with ``{"filename": str, "size_mb":
number}`` pretends to process the file and reports progress.

Build it so that:

1. Streaming (``?stream=true`` or ``Accept: text/event-stream``), it sends an event of type
   ``progress`` at every 10 % (10, 20, ... 90) and an event of type ``complete`` at 100 %,
   each carrying ``{"task_id", "status", "progress", "message", "bytes_processed"}``: one
   ``task_id`` for the whole task, ``status`` ``"processing"`` then ``"completed"``,
   ``bytes_processed`` = ``size_mb`` MiB x progress / 100 (an int), and a human ``message``.
2. In batch mode it answers only the last of those objects (status ``completed``).
3. An empty ``filename`` or a ``size_mb`` not above 0 (or above 10000) is a 422.

Check your server: ``python -m millstream.dualmode.examples.exercise_2_progress
http://127.0.0.1:8000``. A solution: ``...examples.solutions.exercise_2_progress``.
"""

from __future__ import annotations

import sys

import httpx
import orjson

from ._serve import check_main, require, sse_events

MIB = 1024 * 1024
FIELDS = {"task_id", "status", "progress", "message", "bytes_processed"}


def check(client: httpx.Client) -> None:
    """Raise ``ExerciseFailed`` unless the server at ``client.base_url`` does the exercise."""
    job = {"filename": "video.mp4", "size_mb": 5}
    stream = client.post("/process", params={"stream": "true"}, json=job)
    events = sse_events(stream)
    types = [e.event for e in events]
    require(types == ["progress"] * 9 + ["complete"], f"event types: {types}")
    updates = [orjson.loads(e.data) for e in events]
    for update in updates:
        require(set(update) == FIELDS, f"fields of {update!r}")
    require(len({u["task_id"] for u in updates}) == 1, "task_id must stay the same")
    require([u["progress"] for u in updates] == list(range(10, 101, 10)), "progress steps")
    require([u["status"] for u in updates] == ["processing"] * 9 + ["completed"], "statuses")
    for update in updates:
        expected = 5 * MIB * update["progress"] // 100
        require(update["bytes_processed"] == expected, f"bytes_processed of {update!r}")
        require(isinstance(update["message"], str) and bool(update["message"]), "a message")

    batch = client.post("/process", json=job)
    require(batch.status_code == 200, f"batch answer: status {batch.status_code}")
    final = batch.json()
    require(isinstance(final, dict) and set(final) == FIELDS, f"batch answer: {final!r}")
    require(final["status"] == "completed" and final["progress"] == 100, "batch: completed")
    require(final["bytes_processed"] == 5 * MIB, "batch: every byte processed")

    for bad in ({"filename": "", "size_mb": 1}, {"filename": "a", "size_mb": 0}, {"x": 1}):
        answer = client.post("/process", json=bad)
        require(answer.status_code == 422, f"{bad} should be refused with 422")


if __name__ == "__main__":
    sys.exit(check_main(check))
