"""The SDK's settings: ``ClientConfig`` (connection, security, HTTP admin API), ``ProducerConfig``
and ``ConsumerConfig``, with the Streamline SDK's names, defaults and environment variables.

Every value is checked when the object is built, so a mistake raises ``ConfigurationError``
with a hint at construction, not deep inside a connection attempt. ``STREAMLINE_BOOTSTRAP_SERVERS``
and ``STREAMLINE_HTTP_URL`` are read when a ``ClientConfig`` is created without those fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from millstream.kafka.exceptions import ConfigurationError
from millstream.kafka.serialization import Deserializer, Serializer

if TYPE_CHECKING:
    from millstream.kafka.circuit_breaker import CircuitBreakerConfig

__all__ = [
    "BOOTSTRAP_SERVERS_ENV",
    "COMPRESSION_TYPES",
    "DEFAULT_BOOTSTRAP_SERVERS",
    "DEFAULT_HTTP_PORT",
    "HTTP_URL_ENV",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "ClientConfig",
    "ConsumerConfig",
    "ProducerConfig",
]

BOOTSTRAP_SERVERS_ENV = "STREAMLINE_BOOTSTRAP_SERVERS"
HTTP_URL_ENV = "STREAMLINE_HTTP_URL"
DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
#: millstream's HTTP port: the admin API (``/v1/topics`` ...) lives beside the Durable Streams.
DEFAULT_HTTP_PORT = 4437

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
_OFFSET_RESETS = ("earliest", "latest", "none")
_ISOLATION_LEVELS = ("read_uncommitted", "read_committed")


def _bootstrap_from_env() -> str:
    return os.environ.get(BOOTSTRAP_SERVERS_ENV) or DEFAULT_BOOTSTRAP_SERVERS


def _http_url_from_env() -> str:
    return os.environ.get(HTTP_URL_ENV, "")


def _positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(
                f"{type(owner).__name__}.{name} must be a positive integer, got {value!r}",
                hint=f"Set {name} to a whole number greater than 0 (milliseconds or bytes)",
            )


def _one_of(owner: object, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigurationError(
            f"{type(owner).__name__}.{name} must be one of {', '.join(allowed)}; got {value!r}",
            hint=f"Use one of: {', '.join(allowed)}",
        )


def _parse_bootstrap_servers(servers: str) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` as pairs; ``ConfigurationError`` for anything else."""
    hint = "Use a comma-separated list of host:port, e.g. 'localhost:9092'"
    if not isinstance(servers, str) or not servers.strip():
        raise ConfigurationError("bootstrap_servers is empty", hint=hint)
    pairs = []
    for item in servers.split(","):
        host, sep, port = item.strip().rpartition(":")
        host = host.strip("[]")  # [::1]:9092
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"bootstrap server {item.strip()!r} is not host:port", hint=hint
            )
        pairs.append((host, int(port)))
    return pairs


@dataclass
class ClientConfig:
    """Connection, security and HTTP settings shared by the producer, consumers and admin.

    ``http_url`` is the broker's HTTP API (topic listing, lag, message inspection). Unset, it is
    ``$STREAMLINE_HTTP_URL``, or else millstream's HTTP port on the first bootstrap host
    (``localhost:9092`` gives ``http://localhost:4437``).

    Security follows Kafka's ``security_protocol``: ``SASL_*`` needs ``sasl_mechanism``,
    ``sasl_username`` and ``sasl_password``; ``SSL``/``SASL_SSL`` may name ``ssl_cafile`` (else
    the system's CAs) and, for mutual TLS, ``ssl_certfile`` with ``ssl_keyfile``.
    """

    bootstrap_servers: str = ""
    client_id: str = "streamline-python-client"
    request_timeout_ms: int = 30000
    connection_timeout_ms: int = 10000
    metadata_max_age_ms: int = 300000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    http_url: str = ""
    circuit_breaker: CircuitBreakerConfig | None = None
    enable_telemetry: bool = False

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            self.bootstrap_servers = _bootstrap_from_env()
        first_host = _parse_bootstrap_servers(self.bootstrap_servers)[0][0]
        if not self.http_url:
            self.http_url = _http_url_from_env()
        if not self.http_url:
            host = f"[{first_host}]" if ":" in first_host else first_host
            self.http_url = f"http://{host}:{DEFAULT_HTTP_PORT}"
        self.http_url = self.http_url.rstrip("/")
        url = urlsplit(self.http_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigurationError(
                f"http_url {self.http_url!r} is not an http(s) URL",
                hint="Set http_url (or STREAMLINE_HTTP_URL) to e.g. http://localhost:4437",
            )
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ConfigurationError("client_id must be a non-empty string", hint="Name the app")
        _positive(self, "request_timeout_ms", "connection_timeout_ms", "metadata_max_age_ms")
        self.security_protocol = str(self.security_protocol).upper()
        if self.sasl_mechanism is not None:
            self.sasl_mechanism = str(self.sasl_mechanism).upper()
        _check_security(self)

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


def _check_security(config: ClientConfig) -> None:
    """The combinations newer Streamline SDKs refuse, each with what to change."""
    _one_of(config, "security_protocol", config.security_protocol, SECURITY_PROTOCOLS)
    sasl_fields = [
        name
        for name in ("sasl_mechanism", "sasl_username", "sasl_password")
        if getattr(config, name) is not None
    ]
    if config.uses_sasl:
        missing = [
            name
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if not getattr(config, name)
        ]
        if missing:
            raise ConfigurationError(
                f"security_protocol={config.security_protocol} needs {', '.join(missing)}",
                hint="Set sasl_mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), "
                "sasl_username and sasl_password",
            )
        _one_of(config, "sasl_mechanism", config.sasl_mechanism, SASL_MECHANISMS)
    elif sasl_fields:
        raise ConfigurationError(
            f"{', '.join(sasl_fields)} set but security_protocol={config.security_protocol}",
            hint="Use security_protocol='SASL_PLAINTEXT' or 'SASL_SSL' to authenticate with "
            "SASL, or remove the sasl_* settings",
        )
    tls_files = [
        name
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        if getattr(config, name) is not None
    ]
    if tls_files and not config.uses_tls:
        raise ConfigurationError(
            f"{', '.join(tls_files)} set but security_protocol={config.security_protocol}",
            hint="Use security_protocol='SSL' or 'SASL_SSL' for TLS, or remove the ssl_* files",
        )
    if (config.ssl_certfile is None) != (config.ssl_keyfile is None):
        given, absent = (
            ("ssl_certfile", "ssl_keyfile")
            if config.ssl_keyfile is None
            else ("ssl_keyfile", "ssl_certfile")
        )
        raise ConfigurationError(
            f"{given} is set without {absent}",
            hint="Client certificates (mutual TLS) need both ssl_certfile and ssl_keyfile",
        )


@dataclass
class ProducerConfig:
    """How records are sent.

    ``compression_type`` is ``"none"`` (upstream's spelling; sent uncompressed), ``"gzip"``,
    ``"snappy"``, ``"lz4"`` or ``"zstd"``. ``retries`` is how many more times a record whose
    send failed with a retryable error is sent again, with exponential backoff (at-least-once:
    a retried record may be stored twice if the first attempt was written but not
    acknowledged). ``enable_idempotence`` needs ``acks="all"``. Serializers: see
    ``millstream.kafka.serialization`` (``None`` means the default: bytes, str or JSON).
    """

    acks: str | int = "all"
    compression_type: str | None = "none"
    batch_size: int = 16384
    linger_ms: int = 0
    max_request_size: int = 1048576
    enable_idempotence: bool = False
    retries: int = 3
    key_serializer: Serializer | None = None
    value_serializer: Serializer | None = None

    def __post_init__(self) -> None:
        if self.compression_type is None:
            self.compression_type = "none"
        self.compression_type = str(self.compression_type).lower()
        _one_of(self, "compression_type", self.compression_type, COMPRESSION_TYPES)
        self.acks = self.aiokafka_acks_value()
        if self.enable_idempotence and self.acks != "all":
            raise ConfigurationError(
                f"enable_idempotence=True needs acks='all', not {self.acks!r}",
                hint="Set acks='all' or turn idempotence off",
            )
        _positive(self, "batch_size", "max_request_size")
        for name in ("linger_ms", "retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(
                    f"ProducerConfig.{name} must be an integer >= 0, got {value!r}",
                    hint=f"Set {name} to 0 or more",
                )
        _callable_or_none(self, "key_serializer", "value_serializer")

    def aiokafka_acks_value(self) -> Literal["all", 0, 1]:
        acks = self.acks
        if acks in ("all", -1, "-1"):
            return "all"
        if acks in (0, "0"):
            return 0
        if acks in (1, "1"):
            return 1
        raise ConfigurationError(
            f"ProducerConfig.acks must be 'all', 0 or 1; got {acks!r}",
            hint="acks='all' waits for the write to be durable; 1 for the leader only; 0 for none",
        )


@dataclass
class ConsumerConfig:
    """How records are fetched and offsets committed.

    ``auto_offset_reset`` is where a consumer without a committed offset starts: ``"latest"``
    (only new records), ``"earliest"``, or ``"none"`` (raise). Deserializers: ``None`` returns
    bytes; see ``millstream.kafka.serialization``.
    """

    group_id: str | None = None
    auto_offset_reset: str = "latest"
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5000
    max_poll_records: int = 500
    session_timeout_ms: int = 30000
    heartbeat_interval_ms: int = 3000
    isolation_level: str = "read_uncommitted"
    key_deserializer: Deserializer | None = None
    value_deserializer: Deserializer | None = None

    def __post_init__(self) -> None:
        if self.group_id is not None and (not isinstance(self.group_id, str) or not self.group_id):
            raise ConfigurationError(
                f"group_id must be a non-empty string or None, got {self.group_id!r}",
                hint="Name the consumer group, or leave group_id=None to consume without one",
            )
        _one_of(self, "auto_offset_reset", self.auto_offset_reset, _OFFSET_RESETS)
        _one_of(self, "isolation_level", self.isolation_level, _ISOLATION_LEVELS)
        _positive(
            self,
            "auto_commit_interval_ms",
            "max_poll_records",
            "session_timeout_ms",
            "heartbeat_interval_ms",
        )
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigurationError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below "
                f"session_timeout_ms ({self.session_timeout_ms})",
                hint="Heartbeats must arrive several times per session; a third of it is usual",
            )
        _callable_or_none(self, "key_deserializer", "value_deserializer")


def _callable_or_none(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and not callable(value):
            raise ConfigurationError(
                f"{type(owner).__name__}.{name} must be callable, got {type(value).__name__}",
                hint="Pass a function such as millstream.kafka.json_serializer",
            )
