"""Runs the plan: each server in turn, each scenario of its protocols as a load-generator process.

Servers are started and stopped here; a scenario marked ``fresh_server`` gets a server process
of its own (its memory figures would mean nothing after other scenarios). A scenario that
times out, crashes, or leaves the server dead is recorded as failed and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _peers
from benchmarks._model import Mode, Scenario, scenarios_for
from benchmarks._servers import REPO, RunningServer, ServerSpec, ServerUnavailable

__all__ = ["Plan", "machine", "run"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to run: the mode, the servers (in order), and optionally a subset of scenarios."""

    mode: Mode
    servers: Sequence[ServerSpec]
    only: frozenset[str] = frozenset()  # scenario names; empty means all
    suite: str = "durable-streams"

    def scenarios(self, spec: ServerSpec) -> list[tuple[str, Scenario]]:
        return [
            (protocol, scenario)
            for protocol in spec.endpoints
            for scenario in scenarios_for(protocol)
            if not self.only or scenario.name in self.only
        ]


def machine() -> dict[str, Any]:
    """Cores, memory and CPU model of this machine, for the record."""
    found: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        meminfo = Path("/proc/meminfo").read_text().split()
        found["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                found["cpu"] = line.split(":", 1)[1].strip()
                break
    except (OSError, ValueError):
        pass
    return found


Progress = Callable[[str, str, dict[str, Any]], None]


def run(plan: Plan, progress: Progress) -> dict[str, Any]:
    """Run ``plan``; ``progress(server, scenario, result)`` is called after each scenario."""
    started = dt.datetime.now(dt.UTC)
    doc: dict[str, Any] = {
        "schema": 1,
        "date": started.isoformat(timespec="seconds"),
        "mode": plan.mode,
        "suite": plan.suite,
        "machine": machine(),
        "harness": _peers.harness_versions(),
        "servers": {},
        "scenarios": {},
        "results": {},
    }
    for spec in plan.servers:
        info: dict[str, Any] = {
            "label": spec.label,
            "compare_to": spec.compare_to,
            "also_compare_to": list(spec.also_compare_to),
        }
        doc["servers"][spec.name] = info
        results: dict[str, Any] = doc["results"].setdefault(spec.name, {})
        try:
            spec.prepare()
        except ServerUnavailable as exc:
            info |= {"status": "unavailable", "reason": str(exc)}
            progress(spec.name, "-", {"status": "unavailable", "failure": str(exc)})
            continue
        info |= {"status": "ran", "versions": spec.versions()}
        for protocol, scenario in plan.scenarios(spec):
            doc["scenarios"].setdefault(protocol, {})[scenario.name] = _describe(scenario, plan)
        try:
            _run_server(spec, plan, results, progress)
        except ServerUnavailable as exc:
            info |= {"status": "unavailable", "reason": str(exc)}
            progress(spec.name, "-", {"status": "unavailable", "failure": str(exc)})
    doc["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    return doc


def _describe(scenario: Scenario, plan: Plan) -> dict[str, Any]:
    return {
        "title": scenario.title,
        "params": dict(scenario.params[plan.mode]),
        "timeout_s": scenario.timeout[plan.mode],
        "fresh_server": scenario.fresh_server,
        "figures": [
            {"key": f.key, "label": f.label, "unit": f.unit, "higher_is_better": f.higher_is_better}
            for f in scenario.figures
        ],
    }


@contextmanager
def _server(spec: ServerSpec, scratch: Path) -> Iterator[RunningServer]:
    server = RunningServer(spec, scratch)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _run_server(spec: ServerSpec, plan: Plan, results: dict[str, Any], progress: Progress) -> None:
    """All of ``spec``'s scenarios: one shared server process, plus one per fresh scenario."""
    scratch = _peers.WORK / "scratch" / spec.name
    shared: RunningServer | None = None
    try:
        for protocol, scenario in plan.scenarios(spec):
            began = time.monotonic()
            if scenario.fresh_server:
                with _server(spec, scratch / scenario.name) as own:
                    result = _run_scenario(own, protocol, scenario, plan.mode)
            else:
                if shared is None or not shared.alive():
                    if shared is not None:
                        shared.stop()
                    shared = RunningServer(spec, scratch / "shared")
                result = _run_scenario(shared, protocol, scenario, plan.mode)
            result["elapsed_s"] = round(time.monotonic() - began, 2)  # with any server start
            results[scenario.name] = result
            progress(spec.name, scenario.name, result)
    finally:
        if shared is not None:
            shared.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _run_scenario(
    server: RunningServer, protocol: str, scenario: Scenario, mode: Mode
) -> dict[str, Any]:
    """One load-generator process against ``server``; its JSON line is the result."""
    limit = scenario.timeout[mode] + 30  # the load generator enforces its own bound first
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--protocol",
        protocol,
        "--scenario",
        scenario.name,
        "--mode",
        mode,
        "--target",
        server.targets[protocol],
        "--server-pid",
        str(server.pid),
    ]
    try:
        done = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=limit, check=False
        )
    except subprocess.TimeoutExpired:
        return _failed(f"load generator killed after {limit:g} s")
    lines = done.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return _failed(f"load generator exited {done.returncode}: {done.stderr.strip()[-500:]}")
    if not server.alive():
        tail = "".join(server.output[-5:]).strip()
        result |= {"status": "failed", "failure": f"server exited ({tail[-300:]})", "values": {}}
    return result


def _failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "failure": reason, "values": {}, "errors": 0, "requests": 0}
