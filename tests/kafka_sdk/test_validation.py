"""``validate_topic_name``: Kafka's rules, checked on every string (property-based)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from millstream.kafka import ConfigurationError, validate_topic_name

LEGAL = re.compile(r"[A-Za-z0-9._-]{1,249}")


@given(st.text(max_size=300))
def test_any_string_is_accepted_exactly_when_kafka_would(name: str) -> None:
    legal = LEGAL.fullmatch(name) is not None and name not in (".", "..")
    if legal:
        validate_topic_name(name)
    else:
        with pytest.raises(ConfigurationError) as caught:
            validate_topic_name(name)
        assert caught.value.hint
        assert not caught.value.retryable


@given(st.from_regex(LEGAL, fullmatch=True))
def test_legal_names_pass(name: str) -> None:
    if name not in (".", ".."):
        validate_topic_name(name)


@pytest.mark.parametrize(
    ("name", "needle"),
    [("", "empty"), ("x" * 250, "249"), ("..", "'..'"), ("a b", "' '"), (7, "str")],
)
def test_messages_say_what_is_wrong(name: object, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        validate_topic_name(name)  # type: ignore[arg-type]
