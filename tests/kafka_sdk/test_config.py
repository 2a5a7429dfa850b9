"""Configuration: upstream names and defaults, environment variables, validation with hints, and
the security settings as aiokafka receives them (an ``SSLContext``, SASL PLAIN/SCRAM)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest

from millstream.kafka import (
    ClientConfig,
    ConfigurationError,
    ConsumerConfig,
    ProducerConfig,
    StreamlineClient,
)
from millstream.kafka._security import connection_kwargs
from tlsfiles import TlsFiles, make_tls_files


def test_upstream_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMLINE_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("STREAMLINE_HTTP_URL", raising=False)
    client = ClientConfig()
    assert client.bootstrap_servers == "localhost:9092"
    assert client.client_id == "streamline-python-client"
    assert (client.request_timeout_ms, client.connection_timeout_ms) == (30000, 10000)
    assert client.metadata_max_age_ms == 300000
    assert client.security_protocol == "PLAINTEXT"
    assert client.sasl_mechanism is client.sasl_username is client.sasl_password is None
    assert client.ssl_cafile is client.ssl_certfile is client.ssl_keyfile is None
    assert client.circuit_breaker is None
    assert client.enable_telemetry is False
    assert client.http_url == "http://localhost:4437"  # millstream's HTTP port

    producer = ProducerConfig()
    assert (producer.acks, producer.compression_type) == ("all", "none")
    assert (producer.batch_size, producer.linger_ms) == (16384, 0)
    assert (producer.max_request_size, producer.enable_idempotence) == (1048576, False)
    assert producer.retries == 3

    consumer = ConsumerConfig()
    assert consumer.group_id is None
    assert (consumer.auto_offset_reset, consumer.enable_auto_commit) == ("latest", True)
    assert (consumer.auto_commit_interval_ms, consumer.max_poll_records) == (5000, 500)
    assert (consumer.session_timeout_ms, consumer.heartbeat_interval_ms) == (30000, 3000)
    assert consumer.isolation_level == "read_uncommitted"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMLINE_BOOTSTRAP_SERVERS", "broker-a:19092,broker-b:19092")
    monkeypatch.delenv("STREAMLINE_HTTP_URL", raising=False)
    config = ClientConfig()
    assert config.bootstrap_servers == "broker-a:19092,broker-b:19092"
    assert config.http_url == "http://broker-a:4437"  # the first bootstrap host
    monkeypatch.setenv("STREAMLINE_HTTP_URL", "https://admin.example:8443/")
    assert ClientConfig().http_url == "https://admin.example:8443"
    assert ClientConfig(http_url="http://other:1").http_url == "http://other:1"
    assert StreamlineClient().bootstrap_servers == "broker-a:19092,broker-b:19092"
    assert StreamlineClient("x:1").http_url == "https://admin.example:8443"


def test_ipv6_bootstrap_gives_a_bracketed_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMLINE_HTTP_URL", raising=False)
    assert ClientConfig(bootstrap_servers="[::1]:9092").http_url == "http://[::1]:4437"


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"bootstrap_servers": "no-port"}, "host:port"),
        ({"bootstrap_servers": "h:99999"}, "host:port"),
        ({"request_timeout_ms": 0}, "request_timeout_ms"),
        ({"connection_timeout_ms": -5}, "connection_timeout_ms"),
        ({"http_url": "ftp://x"}, "http_url"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"},
            "sasl_username",
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "GSSAPI",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            "sasl_mechanism",
        ),
        ({"sasl_username": "u"}, "SASL_PLAINTEXT"),
        ({"ssl_cafile": "/ca.pem"}, "security_protocol='SSL'"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": "p",
                "ssl_cafile": "/x",
            },
            "ssl_cafile",
        ),
        ({"security_protocol": "SSL", "ssl_certfile": "/c.pem"}, "ssl_keyfile"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "ssl_certfile"),
    ],
)
def test_invalid_client_settings(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig(**settings)  # type: ignore[arg-type]
    assert needle in str(caught.value)
    assert caught.value.hint
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"compression_type": "brotli"}, "compression_type"),
        ({"acks": 2}, "acks"),
        ({"acks": 1, "enable_idempotence": True}, "idempotence"),
        ({"batch_size": 0}, "batch_size"),
        ({"retries": -1}, "retries"),
        ({"linger_ms": True}, "linger_ms"),
        ({"value_serializer": "json"}, "callable"),
    ],
)
def test_invalid_producer_settings(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        ProducerConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"auto_offset_reset": "smallest"}, "auto_offset_reset"),
        ({"isolation_level": "serializable"}, "isolation_level"),
        ({"group_id": ""}, "group_id"),
        ({"max_poll_records": 0}, "max_poll_records"),
        ({"heartbeat_interval_ms": 30000}, "heartbeat_interval_ms"),
        ({"value_deserializer": 3}, "callable"),
    ],
)
def test_invalid_consumer_settings(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        ConsumerConfig(**settings)  # type: ignore[arg-type]


def test_spellings_are_normalised() -> None:
    assert ProducerConfig(compression_type=None).compression_type == "none"  # type: ignore[arg-type]
    assert ProducerConfig(compression_type="GZIP").compression_type == "gzip"
    assert ProducerConfig(acks=-1).acks == "all"
    assert ProducerConfig(acks="1").acks == 1
    config = ClientConfig(
        security_protocol="sasl_plaintext",
        sasl_mechanism="scram-sha-256",
        sasl_username="u",
        sasl_password="p",
    )
    assert (config.security_protocol, config.sasl_mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")


def test_client_keyword_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="bootstrap_server"):
        StreamlineClient("h:1", bootstrap_server="typo:1")
    with pytest.raises(ConfigurationError, match="both"):
        StreamlineClient("h:1", client_config=ClientConfig(bootstrap_servers="h:1"))
    client = StreamlineClient("h:1")
    with pytest.raises(ConfigurationError, match="group"):
        client.consumer(grup_id="typo")
    consumer = client.consumer("g", auto_offset_reset="earliest")
    assert consumer.group_id == "g"


# -- security: what aiokafka is given --------------------------------------------------------


def test_plaintext_passes_no_security_arguments() -> None:
    kwargs = connection_kwargs(ClientConfig(bootstrap_servers="h:1"))
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs
    assert "sasl_mechanism" not in kwargs


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism: str) -> None:
    kwargs = connection_kwargs(
        ClientConfig(
            bootstrap_servers="h:1",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username="alice",
            sasl_password="s3cret",
        )
    )
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "alice"
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in kwargs


def test_ssl_context_trusts_the_given_ca_and_presents_the_client_certificate(
    tmp_path: Path,
) -> None:
    files = make_tls_files(tmp_path)
    kwargs = connection_kwargs(
        ClientConfig(
            bootstrap_servers="127.0.0.1:1",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="alice",
            sasl_password="pw",
            ssl_cafile=str(files.ca),
            ssl_certfile=str(files.client_cert),
            ssl_keyfile=str(files.client_key),
        )
    )
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["security_protocol"] == "SASL_SSL"


def test_ssl_without_cafile_uses_the_system_trust_store() -> None:
    context = connection_kwargs(ClientConfig(bootstrap_servers="h:1", security_protocol="SSL"))[
        "ssl_context"
    ]
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_unreadable_tls_files_are_configuration_errors(tmp_path: Path) -> None:
    files: TlsFiles = make_tls_files(tmp_path)
    missing = ClientConfig(
        bootstrap_servers="h:1", security_protocol="SSL", ssl_cafile=str(tmp_path / "nope.pem")
    )
    with pytest.raises(ConfigurationError, match="ssl_cafile") as caught:
        connection_kwargs(missing)
    assert caught.value.hint
    mismatched = dataclasses.replace(
        missing, ssl_cafile=str(files.ca), ssl_certfile=str(files.ca), ssl_keyfile=str(files.ca)
    )
    with pytest.raises(ConfigurationError, match="ssl_certfile"):
        connection_kwargs(mismatched)
