"""Real server processes for tests: millstream and the Node reference server, on free ports.

Every server prints a line containing its ``http://127.0.0.1:PORT`` URL once it accepts
connections; ``ServerProcess`` waits for that line and always stops the process it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NODE_DIR", "REPO", "ServerProcess", "millstream_server", "reference_server"]

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "node"
_URL = re.compile(r"https?://127\.0\.0\.1:(\d+)")
_KAFKA = re.compile(r"kafka://127\.0\.0\.1:(\d+)")


class ServerProcess:
    """A server subprocess whose output is collected; ``url`` is set once it is listening.
    ``env`` replaces the inherited environment (``PYTHONUNBUFFERED=1`` is always added)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path = REPO,
        startup_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
    ):
        self.argv = list(argv)
        self.output: list[str] = []
        self.url = ""
        self.kafka = ""  # HOST:PORT of the Kafka door, when the startup line names one
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        if not self._ready.wait(startup_timeout) or not self.url:
            self.kill()
            raise RuntimeError(f"server did not start: {self.argv}\n{''.join(self.output)}")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if not self.url and (match := _URL.search(line)):
                self.url = match.group(0)
                if kafka := _KAFKA.search(line):
                    self.kafka = kafka.group(0).removeprefix("kafka://")
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in ``timeout``. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_output()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL (simulates a crash) and reap."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_output()

    def _close_output(self) -> None:
        """Let the pump read to EOF, then close the pipe (no ResourceWarning)."""
        self._pump_thread.join(5)
        if self.process.stdout is not None and not self._pump_thread.is_alive():
            self.process.stdout.close()


def millstream_argv(*args: str) -> list[str]:
    """``millstream serve`` on free ports for both doors (``--no-kafka`` drops the Kafka one)."""
    return [sys.executable, "-m", "millstream", "serve", "--port", "0", "--kafka-port", "0", *args]


@contextmanager
def millstream_server(*args: str) -> Iterator[ServerProcess]:
    """``millstream serve --port 0 --kafka-port 0 ARGS...``; pass ``--memory`` or
    ``--data-dir DIR``. ``url`` is the HTTP door's, ``kafka`` the Kafka bootstrap address."""
    server = ServerProcess(millstream_argv(*args))
    try:
        yield server
    finally:
        server.terminate()


@contextmanager
def reference_server(*args: str) -> Iterator[ServerProcess]:
    """The Node reference server, in memory unless given ``--data-dir``."""
    server = ServerProcess(["node", "reference-server.mjs", "--port", "0", *args], cwd=NODE_DIR)
    try:
        yield server
    finally:
        server.terminate()


def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout``; for test set-up only, never the server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(interval)
    return False
