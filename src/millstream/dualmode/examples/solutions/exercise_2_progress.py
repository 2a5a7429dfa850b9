"""Solution to exercise 2: progress every 10 %; the batch answer is the last update."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from millstream.dualmode import SSEEvent, dual_mode

from .._serve import serve

app = FastAPI(title="Exercise 2: progress reporter")
MIB = 1024 * 1024


class Job(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size_mb: float = Field(gt=0, le=10_000)


def last_update(updates: list[dict[str, Any]]) -> dict[str, Any]:
    return updates[-1]


@app.post("/process")
@dual_mode(batch=last_update)
async def process(job: Job) -> AsyncIterator[SSEEvent]:
    task_id = uuid.uuid4().hex
    total = int(job.size_mb * MIB)
    for progress in range(10, 101, 10):
        await asyncio.sleep(0.01)  # the "work" on the next tenth of the file
        done = progress == 100
        update = {
            "task_id": task_id,
            "status": "completed" if done else "processing",
            "progress": progress,
            "message": f"{job.filename}: {'done' if done else f'{progress}% processed'}",
            "bytes_processed": total * progress // 100,
        }
        yield SSEEvent(update, event="complete" if done else "progress")


if __name__ == "__main__":
    serve(app, description=__doc__)
