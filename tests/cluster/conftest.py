"""Nodes of a cluster: ``millstream serve --store postgresql://...`` processes on one database.

``start_cluster(size, *args)`` starts ``size`` nodes at once on a fresh database (or the one
given) and stops every one at the end of the test; it waits until each node sees all the
others (its ``/health`` lists them), so Kafka Metadata names every broker from the start.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from postgres import PostgresServer

from servers import ServerProcess, millstream_argv, wait_until

#: Several nodes importing at once on a loaded 2-core machine can take longer than the usual
#: 30 s to print their startup line; a node that never starts still fails the test.
STARTUP_TIMEOUT = 90.0

#: A dead node leaves every view after this many seconds (``--cluster-ttl``): short, so that
#: tests of failures do not wait long, and well above a heartbeat under load (ttl / 3).
CLUSTER_TTL = "3"

StartCluster = Callable[..., list[ServerProcess]]


def health(node: ServerProcess) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(node.url + "/health", timeout=10).json()
    return answer


def node_ids(node: ServerProcess) -> list[int]:
    """The node ids ``node`` sees live with both doors published."""
    return [n["node_id"] for n in health(node)["cluster"]["nodes"] if "kafka" in n and "http" in n]


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.database("cluster")


@pytest.fixture
def start_cluster(database: str) -> Iterator[StartCluster]:
    started: list[ServerProcess] = []

    def start(size: int, *args: str, dsn: str = database) -> list[ServerProcess]:
        argv = millstream_argv(
            "--store", dsn, "--long-poll-timeout", "5", "--cluster-ttl", CLUSTER_TTL, *args
        )
        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            nodes = list(
                pool.map(
                    lambda _: ServerProcess(argv, startup_timeout=STARTUP_TIMEOUT), range(size)
                )
            )
        started.extend(nodes)
        everyone = len([n for n in started if n.process.poll() is None])
        for node in nodes:
            assert wait_until(lambda node=node: len(node_ids(node)) == everyone, 20), health(node)
        return nodes

    try:
        yield start
    finally:
        for node in started:
            node.terminate()
