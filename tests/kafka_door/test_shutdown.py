"""SIGTERM with Kafka clients connected: in-flight produces are answered (and durable),
parked fetches answer at once, connections close, the process exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from millstream.server.kafka import codec
from servers import ServerProcess, millstream_argv

from .test_bad_input import batch, latest, produce
from .wire import Wire

pytestmark = pytest.mark.timeout(120)


def _fetch_at_tail(topic: str, offset: int) -> codec.FetchRequest:
    return codec.FetchRequest(
        max_wait_ms=20_000,
        min_bytes=1,
        topics=[
            codec.FetchTopic(
                topic=topic,
                partitions=[
                    codec.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=1 << 20
                    )
                ],
            )
        ],
    )


def test_sigterm_answers_produces_ends_fetches_and_exits_zero(tmp_path: Path) -> None:
    argv = millstream_argv("--data-dir", str(tmp_path))
    server = ServerProcess(argv)
    try:
        topic = "shutdown"
        with Wire(server.kafka) as setup:
            response = setup.call(produce(topic, batch(b"first")), 8)
            assert response.responses[0].partition_responses[0].error_code == 0
        with Wire(server.kafka, timeout=15) as fetcher, Wire(server.kafka, timeout=15) as producer:
            answered = _stop_while_busy(server, topic, fetcher, producer)
    finally:
        server.terminate()
    restarted = ServerProcess(argv)
    try:
        with Wire(restarted.kafka) as wire:
            error, end = latest(wire, topic)
        assert error == 0
        assert end >= 1 + answered  # every answered produce survived the restart
    finally:
        restarted.terminate()


def _stop_while_busy(server: ServerProcess, topic: str, fetcher: Wire, producer: Wire) -> int:
    """SIGTERM with a parked fetch and 200 pipelined produces; returns how many were answered."""
    fetcher.send(_fetch_at_tail(topic, 1), 11)
    time.sleep(0.5)  # parked now
    sent = [producer.send(produce(topic, batch(b"m%d" % i)), 8) for i in range(200)]
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    frame = fetcher.read_frame()
    assert frame is not None, "the parked fetch was not answered"
    _, fetched = codec.decode_response(1, 11, frame)
    assert fetched.responses[0].partitions[0].error_code == 0
    assert fetcher.read_frame() is None  # then the connection closes
    answered = 0
    while (frame := producer.read_frame()) is not None:
        correlation, response = codec.decode_response(0, 8, frame)
        assert correlation == sent[answered]  # in order, none skipped
        assert response.responses[0].partition_responses[0].error_code == 0
        answered += 1
    assert server.process.wait(15) == 0, "".join(server.output)
    assert time.monotonic() - started < 10
    return answered
