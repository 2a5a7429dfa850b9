"""SentinelConfig: upstream defaults and validation, the environment, and translations that the
real clients accept (kafka-python 3 and aiokafka), including SSL and SASL against a real broker
behind a TLS/SASL front."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiokafka import AIOKafkaProducer
from kafka import KafkaProducer

from millstream.telemetry import (
    AsyncSentinelClient,
    ConfigurationError,
    ConnectionError,
    SentinelClient,
    SentinelConfig,
)

from .brokers import Tansu, collect_kafka_python_leaks, consume, free_port, tansu
from .front import front

UPSTREAM_DEFAULTS = {
    "topic": "llm-telemetry",
    "client_id": "sentinel-sdk-python",
    "compression_type": "gzip",
    "acks": "all",
    "retries": 3,
    "retry_backoff_ms": 100,
    "request_timeout_ms": 30000,
    "linger_ms": 10,
    "batch_size": 16384,
    "max_in_flight_requests": 5,
    "enable_idempotence": True,
    "buffer_memory": 33554432,
    "max_request_size": 1048576,
    "metadata_max_age_ms": 300000,
    "security_protocol": "PLAINTEXT",
    "sasl_mechanism": None,
    "sasl_username": None,
    "sasl_password": None,
    "ssl_ca_location": None,
    "ssl_cert_location": None,
    "ssl_key_location": None,
    "additional_config": {},
}


def test_upstream_defaults() -> None:
    config = SentinelConfig(brokers=["b:9092"])
    for name, value in UPSTREAM_DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.blocking is False
    assert config.queue_size == 10_000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"brokers": []}, "brokers cannot be empty"),
        ({"topic": ""}, "topic cannot be empty"),
        ({"acks": "2"}, "Invalid acks value"),
        ({"compression_type": "brotli"}, "Invalid compression_type"),
        ({"security_protocol": "TLS"}, "Invalid security_protocol"),
        ({"retries": -1}, "retries must be an integer >= 0"),
        ({"request_timeout_ms": 0}, "request_timeout_ms must be an integer >= 1"),
        ({"queue_size": 0}, "queue_size must be an integer >= 1"),
        ({"batch_size": "big"}, "batch_size must be an integer"),
        ({"close_timeout": -1}, "close_timeout must be a number >= 0"),
        ({"security_protocol": "SASL_PLAINTEXT"}, "PLAIN needs sasl_username and sasl_password"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "MD5"},
            "Invalid sasl_mechanism",
        ),
    ],
)
def test_validation(settings: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"brokers": ["b:9092"], **settings}
    with pytest.raises(ConfigurationError, match=message):
        SentinelConfig(**values)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SENTINEL_BROKERS": "a:1, b:2",
        "SENTINEL_TOPIC": "llm.telemetry",
        "SENTINEL_CLIENT_ID": "me",
        "SENTINEL_COMPRESSION_TYPE": "none",
        "SENTINEL_ACKS": "1",
        "SENTINEL_RETRIES": "7",
        "SENTINEL_SECURITY_PROTOCOL": "SASL_SSL",
        "SENTINEL_SASL_MECHANISM": "SCRAM-SHA-512",
        "SENTINEL_SASL_USERNAME": "alice",
        "SENTINEL_SASL_PASSWORD": "pw",
        "SENTINEL_SSL_CA_LOCATION": "/ca.pem",
        "SENTINEL_SSL_CERT_LOCATION": "/cert.pem",
        "SENTINEL_SSL_KEY_LOCATION": "/key.pem",
        "SENTINEL_BLOCKING": "true",
        "SENTINEL_QUEUE_SIZE": "5",
        "SENTINEL_SPOOL_DIR": "/tmp/spool",
        "SENTINEL_SPOOL_MAX_BYTES": "1000",
    }.items():
        monkeypatch.setenv(name, value)
    config = SentinelConfig.from_env(retries=9)
    assert config.brokers == ["a:1", "b:2"]
    assert (config.topic, config.client_id, config.compression_type) == (
        "llm.telemetry",
        "me",
        "none",
    )
    assert (config.acks, config.retries) == ("1", 9)  # keyword arguments win
    assert (config.security_protocol, config.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (config.sasl_username, config.sasl_password) == ("alice", "pw")
    assert (config.ssl_ca_location, config.ssl_cert_location, config.ssl_key_location) == (
        "/ca.pem",
        "/cert.pem",
        "/key.pem",
    )
    assert config.blocking is True
    assert (config.queue_size, config.spool_dir, config.spool_max_bytes) == (5, "/tmp/spool", 1000)


def test_from_env_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTINEL_BROKERS", raising=False)
    assert SentinelConfig.from_env().brokers == ["localhost:9092"]
    monkeypatch.setenv("SENTINEL_RETRIES", "three")
    with pytest.raises(ConfigurationError, match="SENTINEL_RETRIES is invalid"):
        SentinelConfig.from_env()
    monkeypatch.delenv("SENTINEL_RETRIES")
    with pytest.raises(ConfigurationError, match="unknown settings: bogus"):
        SentinelConfig.from_env(bogus=1)


def test_client_reads_the_environment(monkeypatch: pytest.MonkeyPatch, broker: Tansu) -> None:
    monkeypatch.setenv("SENTINEL_BROKERS", broker.bootstrap)
    monkeypatch.setenv("SENTINEL_TOPIC", "from-env")
    monkeypatch.setenv("SENTINEL_BLOCKING", "1")
    with SentinelClient(enable_idempotence=False) as client:
        assert client.config.brokers == [broker.bootstrap]
        client.track("s", "m", "p", "r", 1.0, 1, 1, 0.0)
    assert len(consume(broker.bootstrap, "from-env", 1)) == 1


def test_kafka_python_3_accepts_the_translation_and_rejects_upstreams(broker: Tansu) -> None:
    config = SentinelConfig(brokers=[broker.bootstrap], enable_idempotence=False)
    settings = config.to_kafka_config()
    assert "buffer_memory" not in settings
    assert settings["acks"] == "all"
    producer = KafkaProducer(**settings)
    try:
        producer.send("translated", b"x").get(10)
    finally:
        producer.close()
    upstream = {**settings, "buffer_memory": config.buffer_memory}  # what upstream passes
    with pytest.raises(ValueError, match=r"Unrecognized configs.*buffer_memory"):
        KafkaProducer(**upstream)


def test_acks_and_compression_translate_to_client_values() -> None:
    one = SentinelConfig(brokers=["b:1"], acks="1", compression_type="none")
    assert one.to_kafka_config()["acks"] == 1
    assert one.to_kafka_config()["compression_type"] is None
    assert one.to_kafka_config()["enable_idempotence"] is False  # idempotence needs acks=all
    assert one.to_aiokafka_config()["acks"] == 1
    assert SentinelConfig(brokers=["b:1"], acks="-1").to_kafka_config()["acks"] == "all"
    assert SentinelConfig(brokers=["b:1"], acks="0").to_aiokafka_config()["acks"] == 0
    extra = SentinelConfig(brokers=["b:1"], additional_config={"linger_ms": 99})
    assert extra.to_kafka_config()["linger_ms"] == 99


async def test_aiokafka_accepts_the_translation(broker: Tansu) -> None:
    config = SentinelConfig(brokers=[broker.bootstrap], enable_idempotence=False)
    producer = AIOKafkaProducer(**config.to_aiokafka_config())
    await producer.start()
    try:
        await producer.send_and_wait("translated-async", b"x")
    finally:
        await producer.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[trustme.CA, ssl.SSLContext, Path]:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca, server, ca_file


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_ssl_with_a_ca_generated_here(
    certificates: tuple[trustme.CA, ssl.SSLContext, Path], client_kind: str, spool_dir: str
) -> None:
    _, server_context, ca_file = certificates
    front_port = free_port()
    with (
        tansu(advertised_port=front_port) as broker,
        front(broker.port, front_port, tls=server_context),
    ):
        config = SentinelConfig(
            brokers=[f"127.0.0.1:{front_port}"],
            security_protocol="SSL",
            ssl_ca_location=str(ca_file),
            enable_idempotence=False,
            blocking=True,
            request_timeout_ms=10000,
            spool_dir=spool_dir,
        )
        assert isinstance(config.to_aiokafka_config()["ssl_context"], ssl.SSLContext)
        assert config.to_kafka_config()["ssl_cafile"] == str(ca_file)
        _send_one(config, client_kind, topic=f"tls-{client_kind}")
        tls = {"security_protocol": "SSL", "ssl_cafile": str(ca_file)}
        assert len(consume(broker.bootstrap, f"tls-{client_kind}", 1, **tls)) == 1
        untrusted = config.replace(ssl_ca_location=None)  # system CAs do not know ours
        with pytest.raises(ConnectionError):
            _send_one(untrusted.replace(request_timeout_ms=3000), client_kind, topic="never")
        collect_kafka_python_leaks()


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_sasl_plain_credentials_reach_the_broker(client_kind: str, spool_dir: str) -> None:
    front_port = free_port()
    with (
        tansu(advertised_port=front_port) as broker,
        front(broker.port, front_port, users={"alice": "s3cret"}) as gate,
    ):
        config = SentinelConfig(
            brokers=[f"127.0.0.1:{front_port}"],
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username="alice",
            sasl_password="s3cret",
            enable_idempotence=False,
            blocking=True,
            request_timeout_ms=10000,
            spool_dir=spool_dir,
        )
        _send_one(config, client_kind, topic=f"sasl-{client_kind}")
        assert "alice" in gate.authenticated
        assert gate.mechanisms_asked[0] == "PLAIN"
        sasl = config.to_kafka_config()
        sasl = {k: sasl[k] for k in ("security_protocol", "sasl_mechanism")} | {
            "sasl_plain_username": "alice",
            "sasl_plain_password": "s3cret",
        }
        assert len(consume(broker.bootstrap, f"sasl-{client_kind}", 1, **sasl)) == 1
        with pytest.raises(ConnectionError):
            _send_one(
                config.replace(sasl_password="wrong", request_timeout_ms=3000),
                client_kind,
                topic="never",
            )
        collect_kafka_python_leaks()
        assert "alice" in gate.refused


def _send_one(config: SentinelConfig, client_kind: str, *, topic: str) -> None:
    config = config.replace(topic=topic)
    if client_kind == "sync":
        client = SentinelClient(config=config)
        try:
            client.track("svc", "m", "p", "r", 1.0, 1, 1, 0.0)
        finally:
            client.close()
        return

    async def run() -> None:
        async with AsyncSentinelClient(config=config) as aclient:
            await aclient.track("svc", "m", "p", "r", 1.0, 1, 1, 0.0)

    asyncio.run(run())
