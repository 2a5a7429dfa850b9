"""What a benchmark is: figures, scenarios keyed by protocol, and the result of one run.

A scenario is registered once under its protocol (``durable-streams``; ``kafka`` later) and
runs against every server that speaks that protocol. It does a fixed amount of work per mode
(``smoke``, ``quick``, ``full``) inside a time bound, checks every response, and returns
figures only when no request failed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MODES",
    "REGISTRY",
    "Context",
    "Figure",
    "Meter",
    "Mode",
    "Outcome",
    "Scenario",
    "ScenarioFailed",
    "Tally",
    "read_rss_bytes",
    "register",
    "scenarios_for",
]

Mode = Literal["smoke", "quick", "full"]
MODES: tuple[Mode, ...] = ("smoke", "quick", "full")


@dataclass(frozen=True, slots=True)
class Figure:
    """One reported number: ``key`` in a scenario's values, shown as ``label`` in ``unit``."""

    key: str
    label: str
    unit: str
    higher_is_better: bool


class ScenarioFailed(Exception):
    """Raised by a scenario that cannot go on (set-up failed, a check broke, time ran out)."""


class Tally:
    """Counts checked requests and failures; keeps a few distinct failure messages to print."""

    def __init__(self, max_samples: int = 5) -> None:
        self.requests = 0
        self.errors = 0
        self.samples: list[str] = []
        self._max = max_samples

    def ok(self, n: int = 1) -> None:
        self.requests += n

    def fail(self, message: str) -> None:
        self.requests += 1
        self.errors += 1
        if len(self.samples) < self._max and message not in self.samples:
            self.samples.append(message)


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` from /proc (0.0 where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")" closing the command name, utime and stime are fields 12 and 13 (0-based 11, 12).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (``VmRSS`` in /proc/<pid>/status), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ScenarioFailed(f"no VmRSS for pid {pid}")


class Meter:
    """Wall time and CPU share (load generator, server) over the measured phases only."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.wall = 0.0
        self.own_cpu = 0.0
        self.server_cpu = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Add the enclosed block's wall and CPU time to the totals (may be entered many times)."""
        wall, own, server = time.perf_counter(), time.process_time(), self._server()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.own_cpu += time.process_time() - own
            self.server_cpu += self._server() - server

    def _server(self) -> float:
        return _process_cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def shares(self) -> tuple[float, float]:
        """(load generator, server) CPU seconds per wall second; 1.0 is one core busy."""
        if self.wall <= 0:
            return 0.0, 0.0
        return self.own_cpu / self.wall, self.server_cpu / self.wall


@dataclass(slots=True)
class Context:
    """What a scenario gets in the load-generator process."""

    target: str
    server_pid: int
    params: Mapping[str, Any]
    tally: Tally = field(default_factory=Tally)
    meter: Meter = field(init=False)
    rss_peak: int = 0  # bytes; a scenario that samples server memory keeps its peak here

    def __post_init__(self) -> None:
        self.meter = Meter(self.server_pid)


@dataclass(slots=True)
class Outcome:
    """A scenario's figures (``values`` keyed by ``Figure.key``) plus anything worth recording."""

    values: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


ScenarioFn = Callable[[Context], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A registered benchmark: its figures, its work per mode, and its time bound per mode."""

    name: str
    protocol: str
    title: str
    figures: tuple[Figure, ...]
    run: ScenarioFn
    params: Mapping[Mode, Mapping[str, Any]]
    timeout: Mapping[Mode, float]
    fresh_server: bool = False  # start a new server process for it (memory figures need one)


REGISTRY: dict[str, dict[str, Scenario]] = {}


def register(scenario: Scenario) -> Scenario:
    """Add ``scenario`` under its protocol; names are unique within a protocol."""
    by_name = REGISTRY.setdefault(scenario.protocol, {})
    if scenario.name in by_name:
        raise ValueError(f"scenario {scenario.name!r} registered twice for {scenario.protocol}")
    by_name[scenario.name] = scenario
    return scenario


def scenarios_for(protocol: str) -> list[Scenario]:
    """Every scenario of ``protocol``, in registration order."""
    return list(REGISTRY.get(protocol, {}).values())
