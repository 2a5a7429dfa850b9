"""SaslHandshake (17) and SaslAuthenticate (36): Kafka clients log in with a millstream token.

Mechanisms: ``PLAIN`` (username: the token's name or id, password: the token) and
``SCRAM-SHA-256``/``SCRAM-SHA-512`` (the same username and password, proven without sending
the password; ``auth.ScramServer``). Only the v1 handshake is served, after which the exchange
travels in SaslAuthenticate requests (KIP-152), which every current client uses.

A successful exchange gives the connection its ``Principal`` and a session (capped per token,
cut, i.e. the connection closed, when the token is revoked); the broker then authorizes every
request against the principal's scopes (``_authz``). A failed one is answered
SASL_AUTHENTICATION_FAILED with a message, counted and logged, and the connection is closed
after the answer, as Kafka does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from millstream.auth import (
    CONNECTION,
    SCRAM_MECHANISMS,
    AuthError,
    InvalidToken,
    Principal,
    ScramError,
    ScramServer,
    TokenRecord,
)

from .codec import (
    ErrorCode,
    RequestHeader,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

if TYPE_CHECKING:
    from ._broker import Broker
    from ._connection import KafkaConnection

__all__ = ["MECHANISMS", "SaslExchange", "sasl_authenticate", "sasl_handshake"]

logger = logging.getLogger("millstream.server.kafka")

MECHANISMS = ["PLAIN", *SCRAM_MECHANISMS]


@dataclass(slots=True)
class SaslExchange:
    """A connection's SASL state between the handshake and the end of authentication."""

    mechanism: str
    scram: ScramServer | None = None
    record: TokenRecord | None = None


async def sasl_handshake(
    broker: Broker, header: RequestHeader, body: SaslHandshakeRequest, connection: KafkaConnection
) -> SaslHandshakeResponse:
    if broker.auth is None:
        return SaslHandshakeResponse(error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM)
    if connection.principal is not None or connection.sasl is not None:
        connection.close_after_answer = True
        return SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE, mechanisms=MECHANISMS)
    if header.api_version < 1:
        # v0 would carry the exchange in raw frames without a request header.
        connection.close_after_answer = True
        return SaslHandshakeResponse(
            error_code=ErrorCode.UNSUPPORTED_VERSION, mechanisms=MECHANISMS
        )
    if body.mechanism not in MECHANISMS:
        return SaslHandshakeResponse(
            error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms=MECHANISMS
        )
    connection.sasl = SaslExchange(body.mechanism)
    return SaslHandshakeResponse(mechanisms=MECHANISMS)


async def sasl_authenticate(
    broker: Broker,
    header: RequestHeader,
    body: SaslAuthenticateRequest,
    connection: KafkaConnection,
) -> SaslAuthenticateResponse:
    auth = broker.auth
    exchange = connection.sasl
    if auth is None or exchange is None or connection.principal is not None:
        connection.close_after_answer = True
        return SaslAuthenticateResponse(
            error_code=ErrorCode.ILLEGAL_SASL_STATE,
            error_message="send SaslHandshake (v1) before SaslAuthenticate, once per connection",
        )
    username = ""
    try:
        auth.check_client(connection.host)
        if exchange.mechanism == "PLAIN":
            username, password = _plain(bytes(body.auth_bytes))
            principal = await auth.authenticate_password(username, password)
            return _accept(broker, connection, principal, b"")
        if exchange.scram is None:  # SCRAM, first round
            exchange.scram = ScramServer(exchange.mechanism)
            username = exchange.scram.receive_first(bytes(body.auth_bytes))
            record, credential = await auth.scram_lookup(username, exchange.mechanism)
            exchange.record = record
            return SaslAuthenticateResponse(auth_bytes=exchange.scram.challenge(credential))
        username = exchange.scram.username
        reply = exchange.scram.receive_final(bytes(body.auth_bytes))
        assert exchange.record is not None  # a decoy credential never verifies
        return _accept(broker, connection, auth.principal(exchange.record), reply)
    except (AuthError, ScramError) as exc:
        error = exc if isinstance(exc, AuthError) else InvalidToken(str(exc))
        auth.refused("kafka", error, connection.host)
        logger.warning(
            "refused SASL %s login of %r from %s: %s (%s)",
            exchange.mechanism,
            username,
            connection.peer,
            error.message,
            error.reason,
            extra={"client": connection.peer, "reason": error.reason, "door": "kafka"},
        )
        connection.close_after_answer = True
        return SaslAuthenticateResponse(
            error_code=ErrorCode.SASL_AUTHENTICATION_FAILED,
            error_message=f"Authentication failed: {error.message}",
        )


def _plain(message: bytes) -> tuple[str, str]:
    """RFC 4616: ``[authzid] NUL authcid NUL passwd``; an authzid must be the user itself."""
    try:
        authzid, username, password = message.decode("utf-8").split("\x00")
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken("malformed SASL/PLAIN message") from None
    if authzid and authzid != username:
        raise InvalidToken("an authorization identity other than the user is not supported")
    return username, password


def _accept(
    broker: Broker, connection: KafkaConnection, principal: Principal, reply: bytes
) -> SaslAuthenticateResponse:
    """The connection now acts as ``principal`` (``LimitExceeded`` over its connection cap)."""
    auth = broker.auth
    assert auth is not None
    connection.session = auth.open_session(principal, CONNECTION, connection.close)
    connection.principal = principal
    connection.sasl = None
    connection.handlers = broker.handlers_for(principal)
    logger.info("%s logged in as %s", connection.peer, principal)
    return SaslAuthenticateResponse(auth_bytes=reply)
