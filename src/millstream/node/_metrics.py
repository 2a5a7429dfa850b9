"""``GET /metrics``: the node's figures in Prometheus' text format, through ``prometheus-client``.

Hot paths only bump plain counters (``HttpStats``, ``KafkaStats``, the store's histograms,
``Authenticator.failures``, ``Tls.failures``, services' ``samples``); this collector reads them
when Prometheus scrapes. Consumer-group lag needs the store, so the route computes it before
rendering (one ``head`` per committed partition). When the node requires tokens (or a token is
sent), the scrape needs one with ``metrics:`` or ``admin:``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from millstream import __version__
from millstream._stats import Histogram
from millstream.log import LogError, partition_path
from millstream.server.http import HttpGate
from millstream.server.http._errors import HttpError
from millstream.server.http._headers import request_headers
from millstream.server.http._responses import error_answer, send_answer
from millstream.server.http._types import Receive, Scope, Send

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["METRICS_PATH", "MetricsRoute"]

METRICS_PATH = "/metrics"
_MAX_LAG_GROUPS = 1000


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(f"millstream_{name}", doc, labels=labels)


def _add(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    family.add_metric(labels, histogram.cumulative(), histogram.sum)


class _Collector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node
        self.lag: list[tuple[str, str, int, int, int]] = []  # group, topic, partition, lag, off

    def collect(self) -> Iterator[Metric]:
        node = self.node
        yield from self._info()
        yield from self._http()
        yield from self._kafka()
        yield from self._store()
        yield from self._auth()
        yield from _samples(s for service in node.services for s in service.samples())

    def _info(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("millstream_info", "millstream's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        uptime = GaugeMetricFamily("millstream_uptime_seconds", "seconds since the node started")
        uptime.add_metric([], time.monotonic() - self.node.started_at)
        yield uptime

    def _http(self) -> Iterator[Metric]:
        stats = self.node.http_app.stats
        requests = CounterMetricFamily(
            "millstream_http_requests", "HTTP requests answered", labels=["route", "status"]
        )
        routes = sorted(stats.routes.items())
        for route, route_stats in routes:
            for status, count in sorted(route_stats.statuses.items()):
                requests.add_metric([route, str(status)], count)
        yield requests
        latency = _histogram(
            "http_request_duration_seconds",
            "time to answer an HTTP request (live reads excluded)",
            ["route"],
        )
        for route, route_stats in routes:
            if route_stats.count:
                _add(latency, [route], route_stats)
        yield latency
        yield _gauge("http_live_readers", "SSE and long-poll readers open now", stats.live_readers)
        yield _counter("appends", "appends (HTTP) and batches (Kafka) written", "door", [
            ("http", stats.appends),
            ("kafka", self._kafka_stat("produced_batches")),
        ])  # fmt: skip
        yield _counter("append_bytes", "bytes appended", "door", [
            ("http", stats.append_bytes),
            ("kafka", self._kafka_stat("produced_bytes")),
        ])  # fmt: skip

    def _kafka_stat(self, name: str) -> int:
        door = self.node.kafka_door
        return 0 if door is None else int(getattr(door.broker.stats, name))

    def _kafka(self) -> Iterator[Metric]:
        door = self.node.kafka_door
        if door is None:
            return
        stats = door.broker.stats
        requests = CounterMetricFamily(
            "millstream_kafka_requests", "Kafka requests answered", labels=["api"]
        )
        for api, count in sorted(stats.requests.items()):
            requests.add_metric([api], count)
        yield requests
        latency = _histogram(
            "kafka_request_duration_seconds", "time to answer a Kafka request", ["api"]
        )
        for api, histogram in sorted(stats.latency.items()):
            _add(latency, [api], histogram)
        yield latency
        yield _gauge("kafka_connections", "Kafka connections open now", len(door.connections))
        yield _gauge("kafka_parked_fetches", "Fetches waiting for data now", stats.parked_fetches)
        yield _counter("kafka_records_produced", "records produced over Kafka", None, [
            (None, stats.produced_records),
        ])  # fmt: skip
        yield _counter("kafka_fetched_bytes", "record bytes fetched over Kafka", None, [
            (None, stats.fetched_bytes),
        ])  # fmt: skip
        lag = GaugeMetricFamily(
            "millstream_consumer_group_lag",
            "records between a group's committed offset and the partition's end",
            labels=["group", "topic", "partition"],
        )
        committed = GaugeMetricFamily(
            "millstream_consumer_group_committed_offset",
            "a group's committed offset",
            labels=["group", "topic", "partition"],
        )
        for group, topic, partition, behind, offset in self.lag:
            lag.add_metric([group, topic, str(partition)], behind)
            committed.add_metric([group, topic, str(partition)], offset)
        yield lag
        yield committed

    def _store(self) -> Iterator[Metric]:
        histograms = self.node.store.histograms()
        if "wal_sync_seconds" in histograms:
            fsync = _histogram("store_fsync_duration_seconds", "fsync of the store's log", [])
            _add(fsync, [], histograms["wal_sync_seconds"])
            yield fsync
        if "commit_jobs" in histograms:
            commits = _histogram(
                "store_group_commit_size", "writes committed together (one fsync)", []
            )
            _add(commits, [], histograms["commit_jobs"])
            yield commits

    def _auth(self) -> Iterator[Metric]:
        node = self.node
        failures = CounterMetricFamily(
            "millstream_auth_failures",
            "refused authentications and authorizations",
            labels=["door", "reason"],
        )
        for (door, reason), count in sorted(node.auth.failures.items()):
            failures.add_metric([door, reason], count)
        yield failures
        tls = CounterMetricFamily(
            "millstream_tls_handshake_failures", "failed TLS handshakes", labels=["door"]
        )
        for name, door_tls in node.tls_by_door().items():
            tls.add_metric([name], door_tls.failures)
        yield tls

    async def refresh(self) -> None:
        """Consumer-group lag: committed offsets against each partition's end."""
        door = self.node.kafka_door
        if door is None:
            self.lag = []
            return
        groups = door.broker.group_store
        store = self.node.store
        rows: list[tuple[str, str, int, int, int]] = []
        for group in sorted(await groups.groups_with_offsets())[:_MAX_LAG_GROUPS]:
            for (topic, partition), entry in sorted((await groups.committed(group)).items()):
                try:
                    tail = (await store.head(partition_path(topic, partition))).tail
                except LogError:
                    continue
                rows.append((group, topic, partition, max(0, tail - entry.offset), entry.offset))
        self.lag = rows


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"millstream_{name}", doc)
    family.add_metric([], value)
    return family


def _counter(
    name: str, doc: str, label: str | None, values: list[tuple[str | None, float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"millstream_{name}", doc, labels=[label] if label else [])
    for value_label, value in values:
        family.add_metric([value_label] if value_label is not None else [], value)
    return family


def _samples(samples: Iterable[Any]) -> Iterator[Metric]:
    families: dict[str, Metric] = {}
    for sample in samples:
        name = sample.name.removesuffix("_total")
        family = families.get(name)
        if family is None:
            kind = CounterMetricFamily if sample.kind == "counter" else GaugeMetricFamily
            family = families[name] = kind(
                f"millstream_{name}", sample.help, labels=[k for k, _ in sample.labels]
            )
        family.add_metric([v for _, v in sample.labels], sample.value)  # type: ignore[attr-defined]
    yield from families.values()


class MetricsRoute:
    """The ASGI app of ``GET /metrics`` (mounted as a service route by the node)."""

    def __init__(self, node: Node, gate: HttpGate) -> None:
        self._collector = _Collector(node)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = request_headers(scope)
        client = scope.get("client")
        host = str(client[0]) if client else None
        gate = self._gate
        try:
            principal = await gate.authenticate(headers, host, "GET /metrics")
            if not principal.permissions.metrics:
                message = f"token {principal.name!r} has no metrics: (or admin:) scope"
                raise gate.forbidden(principal, message, headers, host, "GET /metrics")
        except HttpError as exc:
            await send_answer(send, error_answer(exc))
            return
        await self._collector.refresh()
        body = generate_latest(self._registry)
        await send_answer(
            send,
            (
                200,
                [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"%d" % len(body)),
                ],
                body,
            ),
        )
