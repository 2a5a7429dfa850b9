"""``millstream.auth`` without a server: scopes, canonical paths, SCRAM, limits, the token store
and the authenticator's recheck (a revoked token's sessions are cut)."""

from __future__ import annotations

import base64
import hashlib
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import millstream.auth
from millstream.auth import (
    ANONYMOUS,
    CONNECTION,
    LIVE_READER,
    Authenticator,
    AuthLimits,
    BadPath,
    InvalidScope,
    InvalidToken,
    LimitExceeded,
    Permissions,
    RateLimiter,
    RevokedToken,
    ScramError,
    ScramServer,
    TokenStore,
    canonical_path,
    parse_scope,
    scram_credentials,
)
from millstream.log import MemoryStore

from .test_kafka_auth import ScramClient


def test_public_names_are_pinned() -> None:
    assert millstream.auth.__all__ == [
        "ANONYMOUS",
        "AREAS",
        "CONNECTION",
        "LIVE_READER",
        "SCRAM_MECHANISMS",
        "TOKENS_NAMESPACE",
        "AuthError",
        "AuthLimits",
        "Authenticator",
        "BadPath",
        "InvalidScope",
        "InvalidToken",
        "LimitExceeded",
        "NewToken",
        "Permissions",
        "Principal",
        "RateLimiter",
        "RevokedToken",
        "ScramCredential",
        "ScramError",
        "ScramServer",
        "Session",
        "TokenNotFound",
        "TokenRecord",
        "TokenStore",
        "canonical_path",
        "parse_scope",
        "parse_token",
        "scram_credentials",
    ]


# -- scopes and paths -----------------------------------------------------------------------


def test_scopes_cover_prefixes_and_actions() -> None:
    permissions = Permissions.from_scopes(
        ["read:chat/", "write:logs/*", "admin:tmp/", "group:billing-", "llm:acme", "metrics:"]
    )
    assert permissions.can_read("chat/room")
    assert not permissions.can_read("chatter")
    assert not permissions.can_write("chat/room")
    assert permissions.can_write("logs/x")
    assert not permissions.can_read("logs/x")
    assert permissions.can_admin("tmp/x")
    assert permissions.can_read("tmp/x")
    assert permissions.can_write("tmp/x")
    assert not permissions.can_admin("chat/room")
    assert permissions.can_group("billing-eu")
    assert not permissions.can_group("billing")
    assert permissions.llm == ("acme",)
    assert permissions.metrics
    assert not permissions.everything
    everything = Permissions.from_scopes(["admin:"])
    assert everything.everything
    assert everything.can_group("any")
    assert everything.can_admin("x")
    assert ANONYMOUS.permissions.everything
    nothing = Permissions.from_scopes([])
    assert not nothing.can_read("")
    assert not nothing.can_group("g")
    assert not nothing.metrics


@pytest.mark.parametrize(
    "scope",
    [
        "read", "delete:x", "read:a/../b", "read:./a", "write:/abs", "read:a*b", "metrics:x",
        "llm:", "read:ｆ", "read:a\u200bb", "read:a\nb", "admin:" + "x" * 2000,
    ],
)  # fmt: skip
def test_meaningless_scopes_are_refused(scope: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(scope)


@pytest.mark.parametrize(
    "path",
    ["a/../b", "..", "a/.", "./a", "ａ/x", "e\u0301", "b\u200b", "\u202eb", "ﬁle", "a\x00b"],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(BadPath):
        canonical_path(path)


@given(st.text(max_size=30))
def test_canonical_paths_are_stable_and_never_hide_dots(path: str) -> None:
    try:
        canonical_path(path)
    except BadPath:
        return
    assert unicodedata.normalize("NFKC", path) == path
    assert ".." not in path.split("/")
    assert "." not in path.split("/")
    assert all(unicodedata.category(c) not in ("Cf", "Cc", "Cs", "Co", "Cn") for c in path)


@given(st.sampled_from(["a/", "a", "chat/", ""]), st.text(max_size=12))
def test_a_scope_covers_exactly_the_paths_starting_with_it(prefix: str, path: str) -> None:
    permissions = Permissions.from_scopes([f"read:{prefix}"])
    assert permissions.can_read(path) == path.startswith(prefix)


# -- SCRAM ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_accepts_the_password_and_nothing_else(mechanism: str) -> None:
    credential = scram_credentials(mechanism, "correct horse")
    assert credential.iterations == 4096
    assert ScramCredential_roundtrip(credential)
    for password, ok in (("correct horse", True), ("Correct horse", False)):
        client = ScramClient(mechanism, "user=,x", password)
        server = ScramServer(mechanism)
        assert server.receive_first(client.first().replace(b"n=user=,x", b"n=user=3D=2Cx")) == (
            "user=,x"
        )
        client.first_bare = client.first_bare.replace("n=user=,x", "n=user=3D=2Cx")
        final = client.final(server.challenge(credential))
        if ok:
            reply = server.receive_final(final)
            assert reply.startswith(b"v=")
        else:
            with pytest.raises(ScramError, match="invalid proof"):
                server.receive_final(final)


def ScramCredential_roundtrip(credential: object) -> bool:
    from millstream.auth import ScramCredential

    assert isinstance(credential, ScramCredential)
    return ScramCredential.from_json(credential.to_json()) == credential


def test_scram_refuses_unknown_users_like_wrong_passwords_and_each_message_once() -> None:
    server = ScramServer("SCRAM-SHA-256")
    client = ScramClient("SCRAM-SHA-256", "ghost", "x")
    server.receive_first(client.first())
    challenge = server.challenge(None)  # a decoy salt: no hint that the user does not exist
    again = ScramServer("SCRAM-SHA-256")
    again.receive_first(client.first())
    assert challenge.split(b",")[1] == again.challenge(None).split(b",")[1]  # same decoy salt
    with pytest.raises(ScramError):
        server.receive_final(client.final(challenge))
    with pytest.raises(ScramError):  # one attempt per exchange
        server.receive_final(client.final(challenge))


@pytest.mark.parametrize(
    "first",
    [b"p=tls-unique,,n=u,r=abc", b"n,,n=u", b"n,,r=abc,n=u", b"n,a=other,n=u,r=abc",
     b"n,,n=u,r=abc,m=ext", b"\xff", b"garbage", b"n,,n=,r=abc"],
)  # fmt: skip
def test_scram_refuses_malformed_first_messages(first: bytes) -> None:
    with pytest.raises(ScramError):
        ScramServer("SCRAM-SHA-512").receive_first(first)


@given(st.binary(max_size=200))
def test_scram_garbage_only_raises_scram_error(data: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256")
    try:
        server.receive_first(b"n,,n=u,r=abc")
        server.challenge(scram_credentials("SCRAM-SHA-256", "pw", salt=b"s" * 16))
        server.receive_final(data)
    except ScramError:
        return
    pytest.fail("garbage was accepted")


# -- limits -----------------------------------------------------------------------------------


def test_rate_limiter_take_refuses_and_charge_throttles() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 4.0, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(4)] == [0.0] * 4
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") == 0.0
    now[0] = 1.0
    assert limiter.take("k") == 0.0  # refilled two
    assert limiter.wait_time("k") == 0.0
    quota = RateLimiter(1000.0, 1000.0, clock=lambda: now[0])
    assert quota.charge("t", 500) == 0.0
    assert quota.charge("t", 2500) == pytest.approx(2.0)  # 2000 bytes of debt at 1000 B/s
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="negative"):
        AuthLimits(request_rate=-1)


# -- the store and the authenticator ----------------------------------------------------------


async def test_tokens_keep_scram_credentials_never_the_secret() -> None:
    store = MemoryStore()
    tokens = TokenStore(store)
    new = await tokens.create("app", ["read:a/"], unique_name=True)
    stored = await store.kv_get(millstream.auth.TOKENS_NAMESPACE, new.record.id)
    assert stored is not None
    assert new.token.encode() not in stored.value
    assert new.token.rsplit("_", 1)[1].encode() not in stored.value
    salted = new.record.scram_credential("SCRAM-SHA-512")
    assert salted is not None
    assert (
        base64.b64decode(salted.to_json()["stored_key"])
        != hashlib.sha512(new.token.encode()).digest()
    )
    with pytest.raises(InvalidScope, match="exists"):
        await tokens.create("app", ["read:a/"], unique_name=True)
    with pytest.raises(InvalidScope):
        await tokens.create("bad", ["read:a/../b"])
    assert (await tokens.find("app")) == new.record
    assert (await tokens.find(new.record.id)) == new.record
    await tokens.create("twin", ["read:x"])
    await tokens.create("twin", ["read:y"])  # allowed without unique_name (gateway keys)
    assert await tokens.find("twin") is None  # ambiguous: SASL must use the id
    assert (await tokens.verify_password("app", new.token)).id == new.record.id
    with pytest.raises(InvalidToken):
        await tokens.verify_password("twin", new.token)
    await tokens.revoke(new.record.id)
    assert await tokens.find("app") is None
    with pytest.raises(RevokedToken):
        await tokens.verify(new.token)


async def test_the_recheck_cuts_sessions_of_revoked_tokens_and_caps_them() -> None:
    store = MemoryStore()
    auth = Authenticator(store, required=True, limits=AuthLimits(max_live_readers=1))
    new = await TokenStore(store).create("reader", ["read:a/"])
    principal = await auth.authenticate(new.token)
    assert auth.cached(new.token) == principal
    cut: list[str] = []
    session = auth.open_session(principal, LIVE_READER, lambda: cut.append("sse"))
    with pytest.raises(LimitExceeded, match="live readers"):
        auth.open_session(principal, LIVE_READER, lambda: None)
    connection = auth.open_session(principal, CONNECTION, lambda: cut.append("kafka"))
    await auth.recheck()
    assert cut == []
    await TokenStore(store).revoke(new.record.id)  # as the CLI would, in another process
    assert auth.cached(new.token) is not None  # until the next recheck
    await auth.recheck()
    assert sorted(cut) == ["kafka", "sse"]
    assert session.revoked
    assert connection.revoked
    assert auth.cached(new.token) is None
    with pytest.raises(RevokedToken):
        await auth.authenticate(new.token)
    assert auth.sessions(new.record.id) == 0


async def test_failed_logins_lock_a_client_out() -> None:
    now = [0.0]
    auth = Authenticator(
        MemoryStore(), limits=AuthLimits(failure_rate=1, failure_burst=2), clock=lambda: now[0]
    )
    for _ in range(2):
        auth.check_client("10.0.0.1")
        auth.refused("http", InvalidToken("no"), "10.0.0.1")
    with pytest.raises(LimitExceeded) as locked:
        auth.check_client("10.0.0.1")
    assert locked.value.retry_after == pytest.approx(1.0)
    auth.check_client("10.0.0.2")  # others are not affected
    now[0] = 1.0
    auth.check_client("10.0.0.1")
    assert auth.failures[("http", "invalid_token")] == 2
