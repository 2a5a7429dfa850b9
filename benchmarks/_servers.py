"""The servers compared, each described by a small spec, and a runner that starts and stops one.

A spec says how to start the server (argv in a scratch directory), which line on its output
means it is ready for each protocol it speaks (a regex whose first group is the target: a URL,
or a Kafka bootstrap address), and which millstream variants it is compared with. A
Kafka-compatible broker is one more spec with ``endpoints={"kafka": ...}`` (Tansu below).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import _peers

__all__ = ["SERVERS", "SUITES", "RunningServer", "ServerSpec", "ServerUnavailable"]

REPO = Path(__file__).resolve().parent.parent


class ServerUnavailable(Exception):
    """The server cannot run here (not installed, install failed, command missing)."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """How to run one server and what to compare it with."""

    name: str
    label: str
    argv: Callable[[Path], list[str]]
    endpoints: Mapping[str, str]  # protocol -> regex on its output; group 1 is the target
    target_suffix: Mapping[str, str] = field(default_factory=dict)  # e.g. where streams live
    compare_to: str = ""  # the millstream spec this peer is paired with ("" for millstream)
    also_compare_to: tuple[str, ...] = ()  # more millstream specs to show a ratio against
    suite: str = "durable-streams"  # which table it belongs to (``--suite``)
    cwd: Path = REPO
    env: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] = lambda: None  # install; raises ServerUnavailable
    versions: Callable[[], dict[str, str]] = dict

    @property
    def is_subject(self) -> bool:
        """millstream itself (as opposed to a peer it is measured against)."""
        return not self.compare_to


class RunningServer:
    """A started server: waits for every endpoint line, knows its pid, always stops cleanly."""

    def __init__(self, spec: ServerSpec, scratch: Path, startup_timeout: float = 60.0) -> None:
        self.spec = spec
        self.targets: dict[str, str] = {}
        self.output: list[str] = []
        self._patterns = {proto: re.compile(rx) for proto, rx in spec.endpoints.items()}
        self._ready = threading.Event()
        scratch.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            spec.argv(scratch),
            cwd=spec.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
        )
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(startup_timeout) or len(self.targets) < len(self._patterns):
            self.stop()
            tail = "".join(self.output[-20:])
            raise ServerUnavailable(f"{spec.name} did not start in {startup_timeout:g} s:\n{tail}")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            if len(self.output) < 2000:
                self.output.append(line)
            for proto, pattern in self._patterns.items():
                if proto not in self.targets and (match := pattern.search(line)):
                    self.targets[proto] = match.group(1) + self.spec.target_suffix.get(proto, "")
            if len(self.targets) == len(self._patterns):
                self._ready.set()
        self._ready.set()  # exited: wake the waiter, which sees missing targets

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def _millstream_available() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "millstream", "serve", "--help"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        raise ServerUnavailable("`millstream serve` is not available in this checkout")


_MILLSTREAM_READY = {
    "durable-streams": r"millstream listening on (http://127\.0\.0\.1:\d+)",
    "kafka": r"millstream listening on .*kafka://(127\.0\.0\.1:\d+)",
    # the Kafka SDK against raw aiokafka, both through millstream's Kafka door
    "kafka-sdk": r"millstream listening on .* and kafka://(127\.0\.0\.1:\d+)",
}
_MILLSTREAM_ROOT = {"durable-streams": "/v1/stream"}  # streams live under this path
_TANSU_READY = {"kafka": r"listening on: tcp://(127\.0\.0\.1:\d+)"}
_NODE_READY = {"durable-streams": r"listening (http://127\.0\.0\.1:\d+)"}
_UVICORN_READY = {"durable-streams": r"Uvicorn running on (http://127\.0\.0\.1:\d+)"}


def _millstream(*args: str) -> Callable[[Path], list[str]]:
    def argv(scratch: Path) -> list[str]:
        extra = [a.replace("{scratch}", str(scratch)) for a in args]
        return [
            sys.executable,
            "-m",
            "millstream",
            "serve",
            "--port",
            "0",
            "--kafka-port",
            "0",
            *extra,
        ]

    return argv


def _node(*args: str) -> Callable[[Path], list[str]]:
    def argv(scratch: Path) -> list[str]:
        extra = [a.replace("{scratch}", str(scratch)) for a in args]
        return ["node", "reference-server.mjs", "--port", "0", *extra]

    return argv


def _sse_app(name: str) -> Callable[[Path], list[str]]:
    def argv(scratch: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchmarks.sse_apps",
            name,
            "--port",
            "0",
            "--scratch",
            str(scratch),
        ]

    return argv


_SSE_READY = {"sse-app": r"Uvicorn running on (http://127\.0\.0\.1:\d+)"}
_DURABLE_SUBJECTS = ("dualmode-durable-memory", "dualmode-durable-sqlite")


def _sse_spec(name: str, label: str, **options: Any) -> ServerSpec:
    """One app of the dual-mode suite (``benchmarks/sse_apps.py``)."""
    options.setdefault("prepare", _peers.ensure_packages("fastapi"))
    return ServerSpec(
        name=name,
        label=label,
        argv=_sse_app(name),
        endpoints=_SSE_READY,
        suite="dualmode",
        versions=_peers.sse_app_versions,
        **options,
    )


def _rakaia(scratch: Path) -> list[str]:
    # The package's own `python -m rakaia` cannot bind port 0 and report it, and logs every
    # request; uvicorn run directly can, with access logging off as for millstream.
    return [
        str(_peers.rakaia_python()),
        "-m",
        "uvicorn",
        "rakaia:app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-access-log",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tansu(scratch: Path) -> list[str]:
    # Tansu cannot bind port 0 and report the port, and advertises what it is told: both URLs
    # name the same free loopback port (another process taking it meanwhile shows as a failed
    # start).
    url = f"tcp://127.0.0.1:{_free_port()}"
    return [
        str(_peers.tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            name="millstream",
            label="millstream (durable, fsync)",
            argv=_millstream("--data-dir", "{scratch}/data"),
            endpoints=_MILLSTREAM_READY,
            target_suffix=_MILLSTREAM_ROOT,
            prepare=_millstream_available,
            versions=_peers.millstream_versions,
        ),
        ServerSpec(
            name="millstream-memory",
            label="millstream --memory",
            argv=_millstream("--memory"),
            endpoints=_MILLSTREAM_READY,
            target_suffix=_MILLSTREAM_ROOT,
            prepare=_millstream_available,
            versions=_peers.millstream_versions,
        ),
        ServerSpec(
            name="node-file",
            label="Node reference (file, fsync)",
            argv=_node("--data-dir", "{scratch}/data"),
            endpoints=_NODE_READY,
            compare_to="millstream",
            cwd=REPO / "node",
            prepare=_peers.ensure_node,
            versions=_peers.node_versions,
        ),
        ServerSpec(
            name="node-memory",
            label="Node reference (memory)",
            argv=_node(),
            endpoints=_NODE_READY,
            compare_to="millstream-memory",
            cwd=REPO / "node",
            prepare=_peers.ensure_node,
            versions=_peers.node_versions,
        ),
        ServerSpec(
            name="rakaia",
            label="rakaia-streams (memory)",
            argv=_rakaia,
            endpoints=_UVICORN_READY,
            compare_to="millstream-memory",
            prepare=_peers.ensure_rakaia,
            versions=_peers.rakaia_versions,
        ),
        ServerSpec(
            name="tansu",
            label="Tansu (memory)",
            argv=_tansu,
            endpoints=_TANSU_READY,
            compare_to="millstream",
            also_compare_to=("millstream-memory",),
            prepare=_peers.ensure_tansu,
            versions=_peers.tansu_versions,
        ),
        _sse_spec("dualmode", "millstream.dualmode"),
        _sse_spec("dualmode-durable-memory", "dualmode durable (MemoryStore)"),
        _sse_spec("dualmode-durable-sqlite", "dualmode durable (SQLite, fsync)"),
        _sse_spec(
            "sse-starlette",
            "sse-starlette EventSourceResponse",
            compare_to="dualmode",
            also_compare_to=_DURABLE_SUBJECTS,
            prepare=_peers.ensure_packages("fastapi", "sse-starlette"),
        ),
        _sse_spec("streaming-response", "FastAPI StreamingResponse", compare_to="dualmode"),
    )
}
SUITES = sorted({spec.suite for spec in SERVERS.values()})
