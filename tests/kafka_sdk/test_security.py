"""Security settings against real peers: TLS and mutual TLS through a TLS-terminating proxy in
front of Tansu (a real handshake verifies the CA, host name and client certificate), and SASL
logins that Tansu (``--authentication``) refuses. Successful SASL logins, over TLS, against
millstream's own door are in ``test_millstream_security.py``."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from millstream.kafka import (
    AuthenticationError,
    ConnectionError,
    StreamlineClient,
    TopicPartition,
)
from tlsfiles import TlsFiles, make_tls_files

from .brokers import Broker, free_port, tansu_argv
from .helpers import make_topic
from .tlsproxy import TlsProxy


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "pki")


def _server_context(files: TlsFiles, *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    context.load_cert_chain(str(files.server_cert), str(files.server_key))
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return context


def _tls_broker(files: TlsFiles, *, require_client_cert: bool) -> Iterator[Broker]:
    proxy_port, broker_port = free_port(), free_port()
    argv = tansu_argv(broker_port)
    advertised = argv.index("--advertised-listener-url") + 1
    argv[advertised] = f"tcp://127.0.0.1:{proxy_port}"  # clients come back through the proxy
    context = _server_context(files, require_client_cert=require_client_cert)
    proxy = TlsProxy(proxy_port, broker_port, context)
    broker = Broker("tansu-tls", argv, broker_port, client_port=proxy_port)
    try:
        yield broker
    finally:
        broker.stop()
        proxy.close()


@pytest.fixture
def tls_broker(tls_files: TlsFiles) -> Iterator[Broker]:
    yield from _tls_broker(tls_files, require_client_cert=False)


@pytest.fixture
def mtls_broker(tls_files: TlsFiles) -> Iterator[Broker]:
    yield from _tls_broker(tls_files, require_client_cert=True)


async def _round_trip(client: StreamlineClient, topic: str) -> bytes | None:
    await make_topic(client, topic)
    await client.produce(topic, b"over TLS")
    async with client.consumer() as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        records = await consumer.poll(timeout_ms=5000)
    return records[0].value if records else None


async def test_ssl_round_trip_verifies_the_broker(tls_broker: Broker, tls_files: TlsFiles) -> None:
    async with StreamlineClient(
        tls_broker.bootstrap, security_protocol="SSL", ssl_cafile=str(tls_files.ca)
    ) as client:
        assert await _round_trip(client, "tls-topic") == b"over TLS"


async def test_untrusted_broker_certificate_is_an_authentication_error(
    tls_broker: Broker, tmp_path: Path
) -> None:
    other_ca = make_tls_files(tmp_path / "other", ca_name="another CA").ca
    client = StreamlineClient(
        tls_broker.bootstrap,
        security_protocol="SSL",
        ssl_cafile=str(other_ca),
        connection_timeout_ms=5000,
    )
    with pytest.raises(AuthenticationError) as caught:
        await client.start()
    assert "ssl_cafile" in caught.value.hint
    assert not caught.value.retryable


async def test_plaintext_client_against_a_tls_listener_fails_to_connect(
    tls_broker: Broker,
) -> None:
    client = StreamlineClient(tls_broker.bootstrap, connection_timeout_ms=3000)
    with pytest.raises(ConnectionError):
        await client.start()


async def test_mutual_tls_needs_the_client_certificate(
    mtls_broker: Broker, tls_files: TlsFiles
) -> None:
    without = StreamlineClient(
        mtls_broker.bootstrap,
        security_protocol="SSL",
        ssl_cafile=str(tls_files.ca),
        connection_timeout_ms=3000,
    )
    with pytest.raises((ConnectionError, AuthenticationError)):
        await without.start()
    async with StreamlineClient(
        mtls_broker.bootstrap,
        security_protocol="SSL",
        ssl_cafile=str(tls_files.ca),
        ssl_certfile=str(tls_files.client_cert),
        ssl_keyfile=str(tls_files.client_key),
    ) as client:
        assert await _round_trip(client, "mtls-topic") == b"over TLS"


@pytest.fixture(scope="module")
def authenticating_tansu() -> Iterator[Broker]:
    port = free_port()
    broker = Broker("tansu-auth", [*tansu_argv(port), "--authentication"], port)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_refused_scram_login_is_an_authentication_error(
    authenticating_tansu: Broker, mechanism: str
) -> None:
    client = StreamlineClient(
        authenticating_tansu.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="nobody",
        sasl_password="wrong",
        connection_timeout_ms=5000,
    )
    with pytest.raises(AuthenticationError) as caught:
        await client.start()
    assert mechanism in str(caught.value)
    assert not caught.value.retryable
    assert caught.value.hint


async def test_missing_login_is_a_connection_error_that_names_sasl(
    authenticating_tansu: Broker,
) -> None:
    # Tansu closes the connection when a client does not authenticate, and offers no PLAIN
    client = StreamlineClient(
        authenticating_tansu.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="nobody",
        sasl_password="wrong",
        connection_timeout_ms=5000,
    )
    with pytest.raises((ConnectionError, AuthenticationError)) as caught:
        await client.start()
    assert "SASL" in str(caught.value)
