"""``ClientConfig`` security settings as aiokafka's keyword arguments.

aiokafka wants an ``ssl.SSLContext`` (not file paths, not a dict: the upstream SDK passed
``True``), and takes the SASL user and password as ``sasl_plain_username``/``sasl_plain_password``
for PLAIN and SCRAM alike. Files are read here, so a missing or malformed certificate is a
``ConfigurationError`` naming the file before any connection is tried.
"""

from __future__ import annotations

import ssl
from typing import Any

from millstream.kafka.config import ClientConfig
from millstream.kafka.exceptions import ConfigurationError

__all__ = ["connection_kwargs", "ssl_context"]


def ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """A client TLS context: verifies the server against ``ssl_cafile`` (or the system's CAs)
    and its host name, and presents ``ssl_certfile``/``ssl_keyfile`` when given."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=config.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load ssl_cafile {config.ssl_cafile!r}: {exc}",
            hint="Point ssl_cafile at a readable PEM file of the CA that signed the broker's "
            "certificate",
        ) from exc
    if config.ssl_certfile is not None:
        try:
            context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load ssl_certfile {config.ssl_certfile!r} with ssl_keyfile "
                f"{config.ssl_keyfile!r}: {exc}",
                hint="Both must be readable PEM files, the key matching the certificate "
                "(an encrypted key is not supported)",
            ) from exc
    return context


def connection_kwargs(config: ClientConfig) -> dict[str, Any]:
    """Everything aiokafka's producer, consumer and admin client share."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "client_id": config.client_id,
        "request_timeout_ms": config.request_timeout_ms,
        "metadata_max_age_ms": config.metadata_max_age_ms,
        "security_protocol": config.security_protocol,
    }
    if config.uses_tls:
        kwargs["ssl_context"] = ssl_context(config)
    if config.uses_sasl:
        kwargs["sasl_mechanism"] = config.sasl_mechanism
        kwargs["sasl_plain_username"] = config.sasl_username
        kwargs["sasl_plain_password"] = config.sasl_password
    return kwargs
