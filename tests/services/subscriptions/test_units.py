"""Pure pieces: glob rules, SSRF rules, config hashing, keys and tokens, backoff."""

from __future__ import annotations

import base64
import random
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

import millstream.services.subscriptions as subs
from millstream.services.subscriptions import (
    KeyRing,
    SubscriptionError,
    backoff_delay,
    glob_match,
    parse_config,
    validate_webhook_url,
)


def test_exports_are_sorted_and_complete() -> None:
    assert subs.__all__ == sorted(subs.__all__)
    assert all(hasattr(subs, name) for name in subs.__all__)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("events/*", "events/a", True),
        ("events/*", "events", False),
        ("events/*", "events/a/b", False),
        ("events/**", "events", True),  # ** matches zero segments
        ("events/**", "events/a/b/c", True),
        ("**", "anything/at/all", True),
        ("**/x", "x", True),
        ("**/x", "a/b/x", True),
        ("**/x", "a/b/y", False),
        ("a/**/z", "a/z", True),
        ("a/**/z", "a/b/c/z", True),
        ("a/**/z", "a/b/c/y", False),
        ("a/*/c/**", "a/b/c", True),
        ("a/*/c/**", "a/b/d", False),
        ("*/b", "a/b", True),
        ("e*", "events", False),  # * inside a segment is literal
        ("e*", "e*", True),
        ("exact/path", "exact/path", True),
        ("exact/path", "exact/paths", False),
        ("/events/*/", "events/a", True),
    ],
)
def test_glob(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x",
        "https://93.184.216.34/hook",
        "http://localhost:8080/hook",
        "http://127.0.0.1:9/hook",
        "http://127.0.0.42/hook",
        "https://localhost/hook",
        "https://127.0.0.1/hook",  # the development exception holds for either scheme
    ],
)
def test_webhook_url_accepted(url: str) -> None:
    assert validate_webhook_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # production needs https
        "http://10.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://127.0.1.1/hook",  # only 127.0.0.x is the dev exception
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://2130706433/hook",  # 127.0.0.1 spelled as one number
        "https://metadata.google.internal/x",
        "https://printer.local/x",
        "https://intranet/x",
        "https://user:pw@example.com/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "not a url",
        "https://example.com:99999/x",
        "https://",
    ],
)
def test_webhook_url_rejected(url: str) -> None:
    with pytest.raises(SubscriptionError) as info:
        validate_webhook_url(url)
    assert info.value.code == "WEBHOOK_URL_REJECTED"
    assert info.value.status == 400


def test_config_hash_is_normalized() -> None:
    base = {"type": "pull-wake", "wake_stream": "w", "pattern": "e/*", "streams": ["b", "a"]}
    one = parse_config(base)
    two = parse_config({**base, "streams": ["/a/", "b", "a"], "lease_ttl_ms": 30_000})
    assert one.streams == ("a", "b")
    assert one.hash() == two.hash()
    assert one.hash() != parse_config({**base, "lease_ttl_ms": 1000}).hash()
    assert one.hash() != parse_config({**base, "description": "x"}).hash()
    assert one.hash() != parse_config({**base, "streams": ["a"]}).hash()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
field_values = st.sampled_from(
    ["webhook", "pull-wake", "a/*", "https://example.com/h", "http://10.0.0.1", 1000, None]
)


@settings(deadline=None)  # the first call pays for imports and caches
@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "pattern", "streams", "webhook", "wake_stream", "lease_ttl_ms", "description"]
        ),
        json_values | field_values,
    )
)
def test_parse_config_only_ever_raises_subscription_error(body: dict[str, object]) -> None:
    try:
        config = parse_config(body)
    except SubscriptionError as exc:
        refused: SubscriptionError | None = exc
    else:
        refused = None
        assert config.pattern is not None or config.streams
        assert len(config.hash()) == 64
    if refused is not None:
        assert refused.status == 400
        assert refused.code in ("INVALID_REQUEST", "WEBHOOK_URL_REJECTED")


def test_signature_verifies_with_the_published_jwk() -> None:
    keys = KeyRing.generate()
    (jwk,) = keys.jwks()["keys"]
    assert jwk["kid"] == keys.kid
    header = keys.sign_webhook(b'{"a":1}')
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert fields["kid"] == keys.kid
    assert abs(int(fields["t"]) - time.time()) < 5
    assert "=" not in fields["ed25519"]  # unpadded base64url
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    signature = base64.urlsafe_b64decode(fields["ed25519"] + "==")
    public.verify(signature, fields["t"].encode() + b'.{"a":1}')  # raises if wrong


def test_key_ring_round_trips_and_kid_comes_from_key_material() -> None:
    keys = KeyRing.generate()
    again = KeyRing.from_json(keys.to_json())
    assert again.kid == keys.kid
    assert again.jwks() == keys.jwks()
    assert KeyRing.generate().kid != keys.kid
    token = keys.issue_token("s", "inc", 3, "claim")
    claims = again.verify_token(token, "s")
    assert (claims.subscription_id, claims.incarnation, claims.generation) == ("s", "inc", 3)


@pytest.mark.parametrize("mutate", ["other-sub", "tamper", "garbage", "other-key"])
def test_tokens_refuse_forgery(mutate: str) -> None:
    keys = KeyRing.generate()
    token = keys.issue_token("s", "inc", 1, "callback")
    payload, mac = token.split(".")
    verifier, presented, subject = {
        "other-sub": (keys, token, "t"),
        "tamper": (keys, payload[:-2] + "AA." + mac, "s"),
        "garbage": (keys, "not-a-token", "s"),
        "other-key": (KeyRing.generate(), token, "s"),
    }[mutate]
    with pytest.raises(SubscriptionError) as info:
        verifier.verify_token(presented, subject)
    assert info.value.code == "TOKEN_INVALID"
    assert info.value.status == 401


def test_backoff_schedule() -> None:
    rng = random.Random(7)
    for attempt, base in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)]:
        for _ in range(50):
            delay = backoff_delay(attempt, rng)
            assert base * 0.8 <= delay <= base * 1.2
