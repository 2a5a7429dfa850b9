"""The Sentinel's durable progress: one record in the store's key-value table.

``positions`` says where reading continues in each telemetry stream; it is written in the same
transaction as the anomalies of the batch that moved it (``AppendRequest.kv``), so after a crash
the anomalies stream holds exactly the anomalies of the positions recorded. ``journal`` lists the
batches processed since the last detector checkpoint (an engine snapshot appended to the internal
stream ``__sentinel/checkpoints``): recovery loads the snapshot and replays those batches without
emitting anything, which rebuilds the detector state exactly (the engine is deterministic), and
goes on from ``positions``. Dead letters go out with an idempotent producer claim
(``dlq_epoch``/``dlq_seq``), so a batch redone after a crash cannot repeat them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["CHECKPOINTS", "NAMESPACE", "STATE_KEY", "Progress"]

NAMESPACE = "sentinel"
STATE_KEY = "progress"
CHECKPOINTS = "__sentinel/checkpoints"


@dataclass
class Progress:
    positions: dict[str, int] = field(default_factory=dict)
    journal: list[list[Any]] = field(default_factory=list)  # [path, start, end] per batch
    checkpoint: int | None = None  # position of the latest snapshot in CHECKPOINTS
    dlq_epoch: int = field(default_factory=lambda: int(time.time()))
    dlq_seq: int = 0  # the next dead-letter append's producer seq
    processed: int = 0
    anomalies: int = 0
    dead_letters: int = 0
    since_checkpoint: int = 0  # events processed since the snapshot

    def encode(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def decode(cls, raw: bytes) -> Progress:
        data = orjson.loads(raw)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def copy(self) -> Progress:
        return Progress.decode(self.encode())
