"""``SentinelConfig``: the upstream SDK's settings, validated, from code or ``SENTINEL_*``
environment variables, translated for kafka-python 3 and aiokafka.

Upstream's ``to_kafka_config()`` passes ``buffer_memory``, which kafka-python 3 no longer has
(its producer refuses to start), and its ``to_aiokafka_config()`` passes SSL files as a dict
where aiokafka needs an ``ssl.SSLContext``. Here both translations produce settings the current
clients accept; ``buffer_memory`` is still accepted and validated, and the SDK's own bounded
queue (``queue_size``) is what bounds memory.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ._errors import ConfigurationError

__all__ = ["DEFAULT_TOPIC", "SentinelConfig", "default_spool_dir"]

DEFAULT_TOPIC = "llm-telemetry"

_ACKS = {"all": "all", "-1": "all", "1": 1, "0": 0}
_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_MECHANISMS = (*_PASSWORD_MECHANISMS, "GSSAPI", "OAUTHBEARER")


def default_spool_dir(topic: str) -> Path:
    """Where events wait on disk while the broker is unreachable, shared by the processes of
    one user (``$XDG_CACHE_HOME/millstream/sentinel-spool/<topic>``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "millstream" / "sentinel-spool" / topic


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


# environment variable -> (field, converter); upstream's list first, then millstream's own
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SENTINEL_TOPIC": ("topic", str),
    "SENTINEL_CLIENT_ID": ("client_id", str),
    "SENTINEL_COMPRESSION_TYPE": ("compression_type", str),
    "SENTINEL_ACKS": ("acks", str),
    "SENTINEL_RETRIES": ("retries", int),
    "SENTINEL_SECURITY_PROTOCOL": ("security_protocol", str),
    "SENTINEL_SASL_MECHANISM": ("sasl_mechanism", str),
    "SENTINEL_SASL_USERNAME": ("sasl_username", str),
    "SENTINEL_SASL_PASSWORD": ("sasl_password", str),
    "SENTINEL_SSL_CA_LOCATION": ("ssl_ca_location", str),
    "SENTINEL_SSL_CERT_LOCATION": ("ssl_cert_location", str),
    "SENTINEL_SSL_KEY_LOCATION": ("ssl_key_location", str),
    "SENTINEL_BLOCKING": ("blocking", _bool),
    "SENTINEL_QUEUE_SIZE": ("queue_size", int),
    "SENTINEL_SPOOL_DIR": ("spool_dir", str),
    "SENTINEL_SPOOL_MAX_BYTES": ("spool_max_bytes", int),
}


@dataclass
class SentinelConfig:
    """Settings of ``SentinelClient``/``AsyncSentinelClient``; invalid values raise
    ``ConfigurationError``.

    The upstream fields keep their names and defaults. Added by millstream: ``blocking``
    (``True``: ``send``/``track`` wait for the broker's ack and raise on failure, as upstream;
    ``False``, the default: they queue the event and return at once), ``queue_size`` (events
    held in memory), ``spool_dir``/``spool_max_bytes`` (the on-disk spool used while the broker
    is unreachable; ``spool_max_bytes=0`` turns it off) and ``close_timeout`` (seconds ``close``
    waits for queued events before spooling the rest).
    """

    brokers: list[str]
    topic: str = DEFAULT_TOPIC
    client_id: str = "sentinel-sdk-python"
    compression_type: str = "gzip"
    acks: str = "all"
    retries: int = 3
    retry_backoff_ms: int = 100
    request_timeout_ms: int = 30000
    linger_ms: int = 10
    batch_size: int = 16384
    max_in_flight_requests: int = 5
    enable_idempotence: bool = True
    buffer_memory: int = 33554432
    max_request_size: int = 1048576
    metadata_max_age_ms: int = 300000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_cert_location: str | None = None
    ssl_key_location: str | None = None
    additional_config: dict[str, Any] = field(default_factory=dict)
    blocking: bool = False
    queue_size: int = 10_000
    spool_dir: str | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        brokers: object = self.brokers
        if isinstance(brokers, str):
            self.brokers = [b.strip() for b in brokers.split(",") if b.strip()]
        if not self.brokers or not all(isinstance(b, str) and b for b in self.brokers):
            raise ConfigurationError("brokers cannot be empty", hint='e.g. ["localhost:9092"]')
        if not isinstance(self.topic, str) or not self.topic:
            raise ConfigurationError("topic cannot be empty")
        self.acks = str(self.acks).lower()
        if self.acks not in _ACKS:
            raise ConfigurationError(f"Invalid acks value: {self.acks}", hint="all, 1 or 0")
        compression: object = self.compression_type
        if compression is None:
            self.compression_type = "none"
        if self.compression_type not in _COMPRESSION:
            raise ConfigurationError(
                f"Invalid compression_type: {self.compression_type}", hint=", ".join(_COMPRESSION)
            )
        if self.security_protocol not in _PROTOCOLS:
            raise ConfigurationError(
                f"Invalid security_protocol: {self.security_protocol}", hint=", ".join(_PROTOCOLS)
            )
        for name in (
            "retries",
            "retry_backoff_ms",
            "linger_ms",
            "max_in_flight_requests",
            "spool_max_bytes",
        ):
            self._check_int(name, minimum=0)
        for name in ("request_timeout_ms", "batch_size", "buffer_memory", "max_request_size"):
            self._check_int(name, minimum=1)
        self._check_int("metadata_max_age_ms", minimum=0)
        self._check_int("queue_size", minimum=1)
        if not isinstance(self.close_timeout, int | float) or self.close_timeout < 0:
            raise ConfigurationError("close_timeout must be a number >= 0")
        self._check_sasl()
        if not isinstance(self.additional_config, dict):
            raise ConfigurationError("additional_config must be a dict")

    def _check_int(self, name: str, *, minimum: int) -> None:
        value = getattr(self, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")

    def _check_sasl(self) -> None:
        if not self.security_protocol.startswith("SASL_"):
            return
        if self.sasl_mechanism is None:
            self.sasl_mechanism = "PLAIN"
        if self.sasl_mechanism not in _MECHANISMS:
            raise ConfigurationError(
                f"Invalid sasl_mechanism: {self.sasl_mechanism}", hint=", ".join(_MECHANISMS)
            )
        if self.sasl_mechanism in _PASSWORD_MECHANISMS and not (
            self.sasl_username and self.sasl_password
        ):
            raise ConfigurationError(
                f"{self.sasl_mechanism} needs sasl_username and sasl_password",
                hint="set SENTINEL_SASL_USERNAME and SENTINEL_SASL_PASSWORD",
            )

    @classmethod
    def from_env(cls, **overrides: Any) -> SentinelConfig:
        """Settings from ``SENTINEL_*`` variables (brokers from ``SENTINEL_BROKERS``, a comma
        list, default ``localhost:9092``); keyword arguments win over the environment."""
        values: dict[str, Any] = {}
        if "brokers" not in overrides:
            raw = os.environ.get("SENTINEL_BROKERS")
            values["brokers"] = (
                [b.strip() for b in raw.split(",") if b.strip()] if raw else ["localhost:9092"]
            )
        for variable, (name, convert) in _ENV.items():
            raw = os.environ.get(variable)
            if name in overrides or raw is None:
                continue
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise ConfigurationError(f"{variable} is invalid: {raw!r}", exc) from exc
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown settings: {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    # -- translations -------------------------------------------------------------------

    def _idempotent(self) -> bool:
        # Kafka idempotence requires acks=all; with acks 0/1 it is off rather than an error.
        return self.enable_idempotence and self.acks == "all"

    def _sasl_settings(self) -> dict[str, Any]:
        """SASL settings under the names both kafka-python and aiokafka use."""
        if not self.security_protocol.startswith("SASL_"):
            return {}
        settings: dict[str, Any] = {"sasl_mechanism": self.sasl_mechanism}
        if self.sasl_username:
            settings["sasl_plain_username"] = self.sasl_username
        if self.sasl_password:
            settings["sasl_plain_password"] = self.sasl_password
        return settings

    def to_kafka_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python 3's ``KafkaProducer``."""
        config: dict[str, Any] = {
            "bootstrap_servers": list(self.brokers),
            "client_id": self.client_id,
            "compression_type": None if self.compression_type == "none" else self.compression_type,
            "acks": _ACKS[self.acks],
            "retries": self.retries,
            "retry_backoff_ms": self.retry_backoff_ms,
            "request_timeout_ms": self.request_timeout_ms,
            # kafka-python 3 fails a batch after delivery_timeout_ms (default 2 min); the
            # shortest value it accepts lets the SDK spool undeliverable events sooner.
            "delivery_timeout_ms": self.linger_ms + self.request_timeout_ms,
            "max_block_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.request_timeout_ms,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "max_in_flight_requests_per_connection": self.max_in_flight_requests,
            "enable_idempotence": self._idempotent(),
            "max_request_size": self.max_request_size,
            "metadata_max_age_ms": self.metadata_max_age_ms,
            "security_protocol": self.security_protocol,
        }
        config.update(self._sasl_settings())
        if self.ssl_ca_location:
            config["ssl_cafile"] = self.ssl_ca_location
        if self.ssl_cert_location:
            config["ssl_certfile"] = self.ssl_cert_location
        if self.ssl_key_location:
            config["ssl_keyfile"] = self.ssl_key_location
        config.update(self.additional_config)
        return config

    def to_aiokafka_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's ``AIOKafkaProducer`` (SSL as an ``SSLContext``)."""
        config: dict[str, Any] = {
            "bootstrap_servers": list(self.brokers),
            "client_id": self.client_id,
            "compression_type": None if self.compression_type == "none" else self.compression_type,
            "acks": _ACKS[self.acks],
            "request_timeout_ms": self.request_timeout_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.batch_size,
            "max_request_size": self.max_request_size,
            "metadata_max_age_ms": self.metadata_max_age_ms,
            "enable_idempotence": self._idempotent(),
            "security_protocol": self.security_protocol,
        }
        config.update(self._sasl_settings())
        if self.security_protocol in ("SSL", "SASL_SSL") or self.ssl_ca_location:
            config["ssl_context"] = self.ssl_context()
        config.update(self.additional_config)
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` trusting ``ssl_ca_location`` (else the system CAs), with the
        client certificate and key when given."""
        try:
            context = ssl.create_default_context(cafile=self.ssl_ca_location)
            if self.ssl_cert_location:
                context.load_cert_chain(self.ssl_cert_location, self.ssl_key_location)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the SSL files: {exc}",
                exc,
                hint="check ssl_ca_location, ssl_cert_location and ssl_key_location",
            ) from exc
        return context

    def resolved_spool_dir(self) -> Path | None:
        """The spool directory to use, or ``None`` when spooling is off."""
        if self.spool_max_bytes == 0:
            return None
        return Path(self.spool_dir) if self.spool_dir else default_spool_dir(self.topic)

    def replace(self, **changes: Any) -> SentinelConfig:
        """A validated copy with ``changes`` applied."""
        current: Mapping[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        return type(self)(**{**current, **changes})
