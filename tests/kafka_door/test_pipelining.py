"""Pipelined produces of one connection reach the store in request order.

An idempotent producer sends several requests without waiting for answers (up to five in
flight); their sequence numbers must be committed in the order they were sent. The door runs
pipelined produces side by side, so one whose topic must first be looked up (not cached)
could otherwise be overtaken by the next one, whose topic is cached: the later sequence would
reach the store first and be refused (UNKNOWN_PRODUCER_ID, or OUT_OF_ORDER_SEQUENCE_NUMBER).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from postgres import PostgresServer

from millstream.server.kafka import codec
from servers import ServerProcess, millstream_server

from .test_bad_input import batch, produce
from .wire import Wire

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgres"])
def node_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """A node on the SQLite store (the module's) or on PostgreSQL, whose lookups all wait."""
    if request.param == "sqlite":
        server: ServerProcess = request.getfixturevalue("kafka_server")
        yield server.kafka
        return
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    with millstream_server("--store", postgres.database("pipelining")) as server:
        yield server.kafka


def test_a_slow_lookup_is_not_overtaken_by_the_next_request(
    node_bootstrap: str, topic_name: str
) -> None:
    bootstrap = node_bootstrap
    cached = f"{topic_name}-cached"
    with Wire(bootstrap) as wire:
        for name in (cached,):
            created = wire.call(
                codec.CreateTopicsRequest(
                    topics=[codec.CreatableTopic(name=name, num_partitions=1,
                                                 replication_factor=1)],
                    timeout_ms=5000,
                ),
                4,
            )  # fmt: skip
            assert created.topics[0].error_code == 0
        init = wire.call(codec.InitProducerIdRequest(transactional_id=None), 2)
        pid = init.producer_id
        for round_ in range(5):
            # The first request names a topic that does not exist yet (the door creates it),
            # then the cached one; the second request only the cached one.
            fresh = f"{topic_name}-fresh-{round_ + 1}"  # created by this produce
            first = produce(fresh, batch(b"f"))
            also = produce(cached, batch(b"a", producer_id=pid, sequence=2 * round_))
            first = dataclasses.replace(first, topic_data=[*first.topic_data, *also.topic_data])
            second = produce(cached, batch(b"b", producer_id=pid, sequence=2 * round_ + 1))
            # Both frames in one write, so they arrive together (no Nagle delay between).
            frames = [
                codec.encode_request(
                    codec.RequestHeader(request.API_KEY, 8, 1000 + k, "tests"), request
                )
                for k, request in enumerate((first, second))
            ]
            wire.sock.sendall(b"".join(frames))
            answers = [wire.receive(codec.ProduceRequest, 8) for _ in range(2)]
            codes = [
                [p.error_code for t in answer.responses for p in t.partition_responses]
                for answer in answers
            ]
            assert codes == [[0, 0], [0]], (round_, codes)
            offsets = [answers[0].responses[1].partition_responses[0].base_offset,
                       answers[1].responses[0].partition_responses[0].base_offset]  # fmt: skip
            assert offsets == [2 * round_, 2 * round_ + 1]
