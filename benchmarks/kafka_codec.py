"""µs per Kafka message for three codecs, side by side: millstream's, kio's and kafka-python's.

    .venv/bin/pip install -e '.[dev,bench]'    # kio is bench-only
    .venv/bin/python benchmarks/kafka_codec.py [--rounds 7] [--number 2000]

Cases (the broker's hot paths): decoding a Produce request with 4 partitions of 16 KiB
record data; encoding a Fetch response with 4 partitions of 4 stored batches of 16 KiB each;
encoding a Metadata response with 10 topics of 3 partitions; each at the highest
pre-flexible version and at a flexible one. Each codec gets the same bytes or values, built
its own way beforehand; what is timed is the call a broker would make: bytes of one frame
body → typed value, or typed value → bytes ready for the socket. For the Fetch response
millstream's figure is for the chunk list ``writelines`` takes; ``+join`` adds the
``b"".join`` a single ``write`` would need, and the other two codecs need the batches of a
partition joined first (included in their time, as a broker would have to do it).

Prints the median of ``--rounds`` timings of ``--number`` calls each, and millstream's ratio
to each peer (above 1× means millstream is faster). On a shared machine the absolute figures
move; the ratios, measured in the same run, are the ones to quote.
"""

from __future__ import annotations

import argparse
import io
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from millstream.server.kafka import codec

BATCH = b"\x00" * 16384  # opaque record data: its content is never looked at by any codec


@dataclass
class Case:
    name: str
    ours: Callable[[], object]
    peers: dict[str, Callable[[], object] | None]


def produce_request_kafka_python(version: int) -> bytes:
    from kafka.protocol.producer import ProduceRequest

    topic = ProduceRequest.TopicProduceData
    request = ProduceRequest[version](
        transactional_id=None,
        acks=-1,
        timeout_ms=30000,
        topic_data=[
            topic(
                name="bench",
                partition_data=[
                    topic.PartitionProduceData(index=i, records=BATCH) for i in range(4)
                ],
            )
        ],
    )
    request.with_header(correlation_id=1, client_id="bench")
    return bytes(request.encode(header=True))


def produce_cases(version: int) -> Case:
    from kafka.protocol.producer import ProduceRequest as KpProduce

    frame = produce_request_kafka_python(version)
    # the body alone, for the codecs that take the header apart separately
    header_size = 8 + 2 + len("bench") + (1 if version >= 9 else 0)
    body = frame[header_size:]

    def ours() -> object:
        return codec.decode_request(frame)

    def kafka_python() -> object:
        return KpProduce.decode(body, version=version)

    return Case(
        f"Produce v{version} request decode (4 × 16 KiB)",
        ours,
        {"kafka-python": kafka_python, "kio": kio_reader("produce", version, "request", body)},
    )


def kio_reader(api: str, version: int, kind: str, body: bytes) -> Callable[[], object] | None:
    try:
        import importlib

        from kio.serial import entity_reader
    except ImportError:
        return None
    module = importlib.import_module(f"kio.schema.{api}.v{version}.{kind}")
    cls = next(
        getattr(module, n) for n in dir(module) if n.endswith(kind.capitalize()) and n[0] != "_"
    )
    read = entity_reader(cls)

    def run() -> object:
        return read(body, 0)

    run()
    return run


def kio_writer(value: Any) -> Callable[[], object]:
    from kio.serial import entity_writer

    write = entity_writer(type(value))

    def run() -> object:
        buffer = io.BytesIO()
        write(buffer, value)
        return buffer.getvalue()

    return run


def fetch_cases(version: int) -> Case:
    header = codec.RequestHeader(codec.ApiKey.FETCH, version, 1, "bench")
    batches = [BATCH] * 4

    def response() -> codec.FetchResponse:
        return codec.FetchResponse(
            responses=[
                codec.FetchableTopicResponse(
                    topic="bench",
                    partitions=[
                        codec.PartitionData(
                            partition_index=i,
                            high_watermark=1000,
                            last_stable_offset=1000,
                            log_start_offset=0,
                            records=batches,
                        )
                        for i in range(4)
                    ],
                )
            ]
        )

    def ours() -> object:
        return codec.encode_response(header, response())

    def ours_joined() -> object:
        return b"".join(codec.encode_response(header, response()))

    from kafka.protocol.consumer import FetchResponse as KpFetch

    def kafka_python() -> object:
        data = KpFetch.FetchableTopicResponse
        value = KpFetch[version](
            throttle_time_ms=0,
            error_code=0,
            session_id=0,
            responses=[
                data(
                    topic="bench",
                    partitions=[
                        data.PartitionData(
                            partition_index=i,
                            error_code=0,
                            high_watermark=1000,
                            last_stable_offset=1000,
                            log_start_offset=0,
                            aborted_transactions=[],
                            preferred_read_replica=-1,
                            records=b"".join(batches),
                        )
                        for i in range(4)
                    ],
                )
            ],
        )
        value.with_header(correlation_id=1)
        return value.encode(header=True, framed=True)

    peers: dict[str, Callable[[], object] | None] = {
        "ours+join": ours_joined,
        "kafka-python": kafka_python,
    }
    try:
        import importlib

        kio_fetch = importlib.import_module(f"kio.schema.fetch.v{version}.response")
        from kio.schema.errors import ErrorCode as KioErrorCode
        from kio.static.primitive import i32, i32Timedelta, i64

        def kio_run() -> object:
            value = kio_fetch.FetchResponse(
                throttle_time=i32Timedelta.parse(__import__("datetime").timedelta(0)),
                error_code=KioErrorCode.none,
                session_id=i32(0),
                responses=(
                    kio_fetch.FetchableTopicResponse(
                        topic="bench",
                        partitions=tuple(
                            kio_fetch.PartitionData(
                                partition_index=i32(i),
                                error_code=KioErrorCode.none,
                                high_watermark=i64(1000),
                                last_stable_offset=i64(1000),
                                log_start_offset=i64(0),
                                aborted_transactions=(),
                                preferred_read_replica=i32(-1),
                                records=b"".join(batches),
                            )
                            for i in range(4)
                        ),
                    ),
                ),
            )
            return kio_writer(value)()

        peers["kio"] = kio_run
    except ImportError:
        peers["kio"] = None
    return Case(f"Fetch v{version} response encode (4 partitions × 4 × 16 KiB)", ours, peers)


def metadata_cases(version: int) -> Case:
    header = codec.RequestHeader(codec.ApiKey.METADATA, version, 1, "bench")

    def ours() -> object:
        response = codec.MetadataResponse(
            brokers=[codec.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=9092)],
            cluster_id="millstream",
            controller_id=0,
            topics=[
                codec.MetadataResponseTopic(
                    name=f"topic-{t}",
                    partitions=[
                        codec.MetadataResponsePartition(
                            partition_index=p,
                            leader_id=0,
                            leader_epoch=0,
                            replica_nodes=[0],
                            isr_nodes=[0],
                        )
                        for p in range(3)
                    ],
                )
                for t in range(10)
            ],
        )
        return codec.encode_response(header, response)

    from kafka.protocol.metadata import MetadataResponse as KpMetadata

    def kafka_python() -> object:
        topic = KpMetadata.MetadataResponseTopic
        value = KpMetadata[version](
            throttle_time_ms=0,
            brokers=[
                KpMetadata.MetadataResponseBroker(node_id=0, host="127.0.0.1", port=9092, rack=None)
            ],
            cluster_id="millstream",
            controller_id=0,
            topics=[
                topic(
                    error_code=0,
                    name=f"topic-{t}",
                    is_internal=False,
                    partitions=[
                        topic.MetadataResponsePartition(
                            error_code=0,
                            partition_index=p,
                            leader_id=0,
                            leader_epoch=0,
                            replica_nodes=[0],
                            isr_nodes=[0],
                            offline_replicas=[],
                        )
                        for p in range(3)
                    ],
                )
                for t in range(10)
            ],
        )
        value.with_header(correlation_id=1)
        return value.encode(header=True, framed=True)

    peers: dict[str, Callable[[], object] | None] = {"kafka-python": kafka_python}
    try:
        import importlib

        kio_meta = importlib.import_module(f"kio.schema.metadata.v{version}.response")
        from kio.schema.errors import ErrorCode as KioErrorCode
        from kio.static.primitive import i32, i32Timedelta

        def kio_run() -> object:
            import datetime

            kwargs: dict[str, Any] = {}
            names = {f for f in kio_meta.MetadataResponse.__dataclass_fields__}
            if "cluster_authorized_operations" in names:
                kwargs["cluster_authorized_operations"] = i32(-2147483648)
            if "error_code" in names:
                kwargs["error_code"] = KioErrorCode.none
            topic_fields = set(kio_meta.MetadataResponseTopic.__dataclass_fields__)
            topic_extra: dict[str, Any] = {}
            if "topic_authorized_operations" in topic_fields:
                topic_extra["topic_authorized_operations"] = i32(-2147483648)
            if "topic_id" in topic_fields:
                from kio.static.constants import uuid_zero

                topic_extra["topic_id"] = uuid_zero
            value = kio_meta.MetadataResponse(
                throttle_time=i32Timedelta.parse(datetime.timedelta(0)),
                brokers=(
                    kio_meta.MetadataResponseBroker(
                        node_id=i32(0), host="127.0.0.1", port=i32(9092), rack=None
                    ),
                ),
                cluster_id="millstream",
                controller_id=i32(0),
                topics=tuple(
                    kio_meta.MetadataResponseTopic(
                        error_code=KioErrorCode.none,
                        name=f"topic-{t}",
                        is_internal=False,
                        partitions=tuple(
                            kio_meta.MetadataResponsePartition(
                                error_code=KioErrorCode.none,
                                partition_index=i32(p),
                                leader_id=i32(0),
                                leader_epoch=i32(0),
                                replica_nodes=(i32(0),),
                                isr_nodes=(i32(0),),
                                offline_replicas=(),
                            )
                            for p in range(3)
                        ),
                        **topic_extra,
                    )
                    for t in range(10)
                ),
                **kwargs,
            )
            return kio_writer(value)()

        peers["kio"] = kio_run
    except ImportError:
        peers["kio"] = None
    return Case(f"Metadata v{version} response encode (10 topics × 3 partitions)", ours, peers)


def measure(fns: list[Callable[[], object]], rounds: int, number: int) -> list[float]:
    """Median µs per call of each function; rounds alternate between them, so load from
    other processes on a shared machine falls on all alike."""
    for fn in fns:
        fn()  # compile caches, imports
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            times[i].append(timeit.timeit(fn, number=number) / number * 1e6)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    cases = [
        produce_cases(8),
        produce_cases(9),
        fetch_cases(11),
        fetch_cases(12),
        metadata_cases(8),
        metadata_cases(12),
    ]
    print(f"{'case':<62} {'codec':<13} {'µs':>8} {'ours ÷':>7}")
    for case in cases:
        peers = [(name, fn) for name, fn in case.peers.items() if fn is not None]
        ours, *theirs = measure([case.ours, *(fn for _, fn in peers)], args.rounds, args.number)
        print(f"{case.name:<62} {'millstream':<13} {ours:>8.1f}")
        for (peer, _), figure in zip(peers, theirs, strict=True):
            print(f"{'':<62} {peer:<13} {figure:>8.1f} {figure / ours:>6.2f}×")
        for peer in (name for name, fn in case.peers.items() if fn is None):
            print(f"{'':<62} {peer:<13} {'n/a':>8}")


if __name__ == "__main__":
    main()
