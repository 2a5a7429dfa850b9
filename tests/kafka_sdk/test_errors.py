"""The error tree and the translation of aiokafka's exceptions at the boundary: every class
carries ``hint`` and ``retryable``; every aiokafka error becomes the most specific SDK class."""

from __future__ import annotations

import builtins
import inspect
import ssl

import aiokafka.errors as ak
import pytest

from millstream.kafka import exceptions
from millstream.kafka._translate import translate
from millstream.kafka.circuit_breaker import CircuitBreakerOpen
from millstream.kafka.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionError,
    ConsumerError,
    ProducerError,
    RateLimitError,
    StreamlineError,
    TimeoutError,
    TopicError,
)

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, StreamlineError)
] + [CircuitBreakerOpen]


def test_the_tree() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert names == {
        "StreamlineError",
        "ConnectionError",
        "TimeoutError",
        "ProducerError",
        "ConsumerError",
        "TopicError",
        "ConfigurationError",
        "AuthenticationError",
        "AuthorizationError",
        "SerializationError",
        "RateLimitError",
        "CircuitBreakerOpen",
    }
    assert all(issubclass(cls, StreamlineError) for cls in ERROR_CLASSES)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_class_has_a_hint_and_a_retryable_flag(cls: type[StreamlineError]) -> None:
    error = cls()
    assert isinstance(error.retryable, bool)
    assert error.hint
    assert f"(hint: {error.hint})" in str(error)


def test_upstream_constructor_and_str() -> None:
    error = ConnectionError("cannot connect", hint="start the server")
    assert str(error) == "cannot connect (hint: start the server)"
    assert error.retryable
    assert not TopicError("x").retryable
    limited = RateLimitError(retry_after_ms=250)
    assert limited.retry_after_ms == 250
    assert limited.retryable
    assert "250ms" in str(limited)
    assert repr(TopicError("gone")) == "TopicError('gone', retryable=False)"


@pytest.mark.parametrize(
    ("raised", "expected", "retryable"),
    [
        (ak.KafkaConnectionError("closed"), ConnectionError, True),
        (ak.NodeNotReadyError("not ready"), ConnectionError, True),
        (ConnectionRefusedError(111, "refused"), ConnectionError, True),
        (ak.KafkaTimeoutError(), TimeoutError, True),
        (ak.RequestTimedOutError(), TimeoutError, True),
        (builtins.TimeoutError(), TimeoutError, True),
        (ak.UnknownTopicOrPartitionError(), TopicError, False),
        (ak.TopicAlreadyExistsError(), TopicError, False),
        (ak.InvalidPartitionsError(), TopicError, False),
        (ak.NotLeaderForPartitionError(), TopicError, True),
        (ak.SaslAuthenticationFailed(), AuthenticationError, False),
        (ak.UnsupportedSaslMechanismError(), AuthenticationError, False),
        (ssl.SSLCertVerificationError("bad cert"), AuthenticationError, False),
        (ak.TopicAuthorizationFailedError("t"), AuthorizationError, False),
        (ak.GroupAuthorizationFailedError(), AuthorizationError, False),
        (ak.MessageSizeTooLargeError(), ProducerError, False),
        (ak.RecordTooLargeError(), ProducerError, False),
        (ak.NotEnoughReplicasError(), ProducerError, True),
        (ak.ProducerFenced(), ProducerError, False),
        (ak.OffsetOutOfRangeError(), ConsumerError, False),
        (ak.CommitFailedError(), ConsumerError, False),
        (ak.RebalanceInProgressError(), ConsumerError, True),
        (ak.NotCoordinatorForGroupError(), ConsumerError, True),
        (ak.IllegalOperation("no group"), ConfigurationError, False),
        (ak.UnsupportedVersionError(), ConfigurationError, False),
        (ak.UnsupportedCodecError("no lz4"), ConfigurationError, False),
        (ak.QuotaViolationError(), RateLimitError, True),
    ],
)
def test_most_specific_translation(
    raised: BaseException, expected: type[StreamlineError], retryable: bool
) -> None:
    error = translate(raised, "produce", "send to 'orders'")
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.hint
    assert str(error).startswith("send to 'orders': ")


def test_broker_codes_are_kept() -> None:
    assert translate(ak.TopicAlreadyExistsError(), "admin").kafka_code == 36
    assert translate(ak.KafkaConnectionError(), "connect").kafka_code is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("connect", ConnectionError),
        ("produce", ProducerError),
        ("consume", ConsumerError),
        ("admin", TopicError),
    ],
)
def test_unknown_errors_fall_back_to_the_operation(
    where: str, expected: type[StreamlineError]
) -> None:
    error = translate(ak.KafkaError("odd"), where)  # type: ignore[arg-type]
    assert type(error) is expected
    assert not error.retryable
    assert type(translate(ak.CorrelationIdError(), where)) is ConnectionError  # type: ignore[arg-type]


def test_every_aiokafka_error_translates_to_an_sdk_error() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(ak, inspect.isclass)
        if issubclass(cls, ak.KafkaError | ak.IllegalOperation | ak.ConsumerStoppedError)
    ]
    assert len(classes) > 80
    for cls in classes:
        try:
            raised = cls()
        except TypeError:
            raised = cls("message")
        error = translate(raised, "consume")
        assert isinstance(error, StreamlineError), cls
        assert isinstance(error.retryable, bool)
        assert error.hint, cls


def test_sdk_errors_pass_through_unchanged() -> None:
    original = TopicError("mine")
    assert translate(original, "produce") is original
