"""Fixtures for the Kafka SDK suite: tests taking ``broker`` run against every real broker,
Tansu (proof that the SDK is not tied to millstream) and ``millstream serve``'s Kafka door.

Brokers are started once per session; each test uses topic and group names of its own.
Tests that stop, pause or restart a broker start their own with ``tansu()`` /
``millstream_kafka()``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from millstream.kafka import StreamlineClient

from .brokers import Broker, millstream_kafka, tansu

BROKERS = ["tansu", "millstream"]
_names = itertools.count()
_RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def millstream() -> Iterator[Broker]:
    """``millstream serve --memory`` with both doors (and the HTTP admin API)."""
    with millstream_kafka() as started:
        yield started


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[Broker]:
    with tansu() as started:
        yield started


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Broker:
    started: Broker = request.getfixturevalue(
        "tansu_broker" if request.param == "tansu" else "millstream"
    )
    return started


@pytest.fixture
def name() -> str:
    """A topic (or group) name no other test uses."""
    return f"t-{_RUN}-{next(_names)}"


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[StreamlineClient]:
    async with StreamlineClient(
        broker.bootstrap, http_url=broker.http_url or "", request_timeout_ms=15000
    ) as started:
        yield started
