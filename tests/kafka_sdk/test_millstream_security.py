"""The Kafka SDK's security settings against millstream's own door: SASL (PLAIN, SCRAM) over TLS
with a millstream token, a wrong password, and a topic outside the token's scopes, against a
real ``millstream serve --require-auth --tls-cert ...`` (``docs/security.md``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from millstream.kafka import AuthenticationError, AuthorizationError, StreamlineClient
from security.conftest import Secured, start_secured
from tlsfiles import TlsFiles, make_tls_files

from .helpers import make_topic

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("sdk-ca"))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, ca: TlsFiles) -> Iterator[Secured]:
    secured = start_secured(
        tmp_path_factory.mktemp("sdk-secured"),
        "--tls-cert", str(ca.server_cert), "--tls-key", str(ca.server_key),
        "--auth-failure-burst", "1000",
    )  # fmt: skip
    try:
        yield secured
    finally:
        secured.server.terminate()


def _client(node: Secured, ca: Path, mechanism: str, password: str) -> StreamlineClient:
    return StreamlineClient(
        node.kafka,
        security_protocol="SASL_SSL",
        ssl_cafile=str(ca),
        sasl_mechanism=mechanism,
        sasl_username="kafka-app",
        sasl_password=password,
        connection_timeout_ms=10000,
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_the_sdk_logs_in_with_a_token_over_tls(
    node: Secured, ca: TlsFiles, mechanism: str
) -> None:
    topic = f"kt-sdk-{mechanism.lower()}"
    async with _client(node, ca.ca, mechanism, node.tokens["kafka-app"]) as client:
        await make_topic(client, topic)
        await client.produce(topic, b"over SASL_SSL")
        async with client.consumer(group_id=f"kg-{topic}", auto_offset_reset="earliest") as c:
            await c.subscribe([topic])
            records = []
            for _ in range(20):
                records = await c.poll(timeout_ms=1000)
                if records:
                    break
    assert records
    assert records[0].value == b"over SASL_SSL"


async def test_a_wrong_token_is_an_authentication_error(node: Secured, ca: TlsFiles) -> None:
    client = _client(node, ca.ca, "SCRAM-SHA-512", node.tokens["kafka-app"] + "x")
    with pytest.raises(AuthenticationError) as caught:
        await client.start()
    assert not caught.value.retryable
    await client.close()


async def test_a_topic_outside_the_scopes_is_an_authorization_error(
    node: Secured, ca: TlsFiles
) -> None:
    async with _client(node, ca.ca, "SCRAM-SHA-256", node.tokens["kafka-app"]) as client:
        with pytest.raises(AuthorizationError):
            await client.produce("not-mine", b"x")
