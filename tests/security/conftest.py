"""Secured ``millstream serve`` processes for the security tests, and what they need.

``ca`` makes a certificate authority and a server certificate for 127.0.0.1 in the test (the
``cryptography`` package), ``issue_tokens`` writes tokens into a data directory before the
server starts (the CLI is tested on its own), and ``secured_server`` starts ``serve
--require-auth`` on it. Every test that expects a refusal also checks that it was logged and
counted and that nothing changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import ipaddress
import re
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from millstream.auth import TokenStore
from millstream.log import SqliteStore
from servers import ServerProcess, millstream_argv

#: The tokens every secured server has, by name: their scopes.
TOKENS: dict[str, list[str]] = {
    "admin": ["admin:"],
    "reader-a": ["read:a/"],
    "writer-a": ["read:a/", "write:a/"],
    "kafka-app": ["read:kt-", "write:kt-", "group:kg-"],
    "kafka-reader": ["read:kt-", "group:kg-"],
    "metrics": ["metrics:"],
}


@dataclass(frozen=True)
class Ca:
    cert: Path  # the CA's certificate (clients trust it)
    server_cert: Path  # 127.0.0.1 / localhost, signed by the CA
    server_key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    """A CA made for this test run and a server certificate it signed."""
    folder = tmp_path_factory.mktemp("ca")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("millstream test CA"))
        .issuer_name(_name("millstream test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = Ca(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    paths.cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def issue_tokens(data_dir: Path, tokens: Mapping[str, list[str]] = TOKENS) -> dict[str, str]:
    """Create ``tokens`` in the store of ``data_dir``; the token strings by name."""

    async def create() -> dict[str, str]:
        store = SqliteStore(data_dir)
        await store.start()
        try:
            made = {}
            for name, scopes in tokens.items():
                made[name] = (await TokenStore(store).create(name, scopes)).token
            return made
        finally:
            await store.aclose()

    data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(create())


@dataclass
class Secured:
    """A running secured server and its tokens."""

    server: ServerProcess
    tokens: dict[str, str]
    data_dir: Path
    verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def kafka(self) -> str:
        return self.server.kafka

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens.get(token, token)}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15, verify=self.verify)

    def stream(self, path: str) -> str:
        return f"{self.url}/v1/stream/{path}"

    def metric(self, name: str, **labels: str) -> float:
        """A sample of ``/metrics`` (0 if absent), read with the admin token."""
        with self.client("admin") as client:
            text = client.get("/metrics").text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
            if match and match.group(1) == name:
                found = (
                    ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
                )
                if found == wanted:
                    return float(match.group(3))
        return 0.0

    def log(self) -> str:
        return "".join(self.server.output)


def start_secured(data_dir: Path, *args: str, tokens: Mapping[str, list[str]] = TOKENS) -> Secured:
    made = issue_tokens(data_dir, tokens)
    server = ServerProcess(
        millstream_argv(
            "--data-dir", str(data_dir), "--require-auth", "--no-llm",
            "--long-poll-timeout", "10", *args,
        )
    )  # fmt: skip
    return Secured(server, made, data_dir)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """``serve --require-auth`` (plain TCP), a generous brute-force guard."""
    node = start_secured(tmp_path_factory.mktemp("secured"), "--auth-failure-burst", "100000")
    try:
        yield node
    finally:
        node.server.terminate()


def raw_request(
    url: str, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as written (no client-side dot-segment removal or encoding)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
