"""Getting in where one does not belong, over HTTP: every refusal is the right status with a JSON
body, is logged and counted, and changes no data. Against a real ``serve --require-auth``."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import httpx
import orjson
import pytest

from servers import wait_until

from .conftest import Secured, raw_request

pytestmark = pytest.mark.timeout(120)


def _setup(secured: Secured, path: str, text: str = "original") -> None:
    with secured.client("admin") as admin:
        created = admin.put(f"/v1/stream/{path}", headers={"Content-Type": "text/plain"})
        created.raise_for_status()
        if created.status_code == 201:
            admin.post(
                f"/v1/stream/{path}", content=text, headers={"Content-Type": "text/plain"}
            ).raise_for_status()


def _content(secured: Secured, path: str) -> tuple[int, bytes]:
    with secured.client("admin") as admin:
        response = admin.get(f"/v1/stream/{path}", params={"offset": "-1"})
    return response.status_code, response.content


def _error(response: httpx.Response) -> str:
    body = orjson.loads(response.content)
    assert set(body["error"]) >= {"code", "message"}
    return str(body["error"]["code"])


def test_no_token_wrong_token_and_malformed_header_are_401(secured: Secured) -> None:
    _setup(secured, "a/no-token")
    before = secured.metric("millstream_auth_failures_total", door="http", reason="missing_token")
    bad_before = secured.metric(
        "millstream_auth_failures_total", door="http", reason="invalid_token"
    )
    cases = {
        None: "missing",
        "ms_0123456789abcdef_" + "x" * 43: "unknown id",
        secured.tokens["admin"][:-2] + "xx": "wrong secret",
        "not-a-token": "malformed",
    }
    for token, why in cases.items():
        with secured.client(token) as client:
            for method, kwargs in (
                ("GET", {"params": {"offset": "-1"}}),
                ("POST", {"content": b"evil", "headers": {"Content-Type": "text/plain"}}),
                ("PUT", {"headers": {"Content-Type": "text/plain"}}),
                ("DELETE", {}),
                ("HEAD", {}),
            ):
                target = "/v1/stream/a/no-token" if method != "PUT" else "/v1/stream/a/new"
                response = client.request(method, target, **kwargs)
                assert response.status_code == 401, (why, method)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.headers["x-request-id"]
                if method != "HEAD":
                    assert _error(response) == "unauthorized", why
    with httpx.Client(base_url=secured.url) as client:
        response = client.get(
            "/v1/stream/a/no-token", headers={"Authorization": "Basic Zm9vOmJhcg=="}
        )
        assert response.status_code == 401
    assert _content(secured, "a/no-token") == (200, b"original")
    with secured.client("admin") as admin:
        assert admin.head("/v1/stream/a/new").status_code == 404
    assert (
        secured.metric("millstream_auth_failures_total", door="http", reason="missing_token")
        == before + 5
    )
    assert (
        secured.metric("millstream_auth_failures_total", door="http", reason="invalid_token")
        >= bad_before + 16
    )
    assert "refused POST a/no-token: unknown token (invalid_token)" in secured.log()


def test_scopes_are_path_prefixes_and_actions(secured: Secured) -> None:
    for path in ("a/one", "ab", "b"):
        _setup(secured, path)
    forbidden = secured.metric("millstream_auth_failures_total", door="http", reason="forbidden")
    with secured.client("reader-a") as reader, secured.client("writer-a") as writer:
        assert reader.get("/v1/stream/a/one", params={"offset": "-1"}).content == b"original"
        assert reader.head("/v1/stream/a/one").status_code == 200
        refused = [
            reader.get("/v1/stream/ab", params={"offset": "-1"}),  # 'a/' does not cover 'ab'
            reader.get("/v1/stream/b", params={"offset": "-1"}),
            reader.post("/v1/stream/a/one", content=b"x", headers={"Content-Type": "text/plain"}),
            reader.put("/v1/stream/a/two", headers={"Content-Type": "text/plain"}),
            reader.delete("/v1/stream/a/one"),
            writer.delete("/v1/stream/a/one"),  # write is not admin
            writer.post("/v1/stream/ab", content=b"x", headers={"Content-Type": "text/plain"}),
            # a fork reads its source: writing a/ does not grant reading b
            writer.put(
                "/v1/stream/a/fork",
                headers={"Content-Type": "text/plain", "Stream-Forked-From": "/v1/stream/b"},
            ),
        ]
        for response in refused:
            assert response.status_code == 403, response.request
            assert _error(response) == "forbidden"
        assert (
            writer.post(
                "/v1/stream/a/one", content=b"+w", headers={"Content-Type": "text/plain"}
            ).status_code
            == 204
        )
    assert _content(secured, "a/one") == (200, b"original+w")
    assert _content(secured, "ab") == (200, b"original")
    assert _content(secured, "b") == (200, b"original")
    with secured.client("admin") as admin:
        for path in ("a/two", "a/fork"):
            assert admin.head(f"/v1/stream/{path}").status_code == 404
    counted = secured.metric("millstream_auth_failures_total", door="http", reason="forbidden")
    assert counted == forbidden + len(refused)
    assert "token 'reader-a' may not read 'ab'" in secured.log()


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/v1/stream/a/../b", "dot-dot segment"),
        ("/v1/stream/a/./b", "dot segment"),
        ("/v1/stream/a/%2e%2e/b", "percent-encoded dot-dot"),
        ("/v1/stream/a%2f..%2fb", "percent-encoded slashes and dots"),
        ("/v1/stream/a/%2E%2E", "upper-case percent-encoded dot-dot at the end"),
        ("/v1/stream/a/" + quote("ｂ"), "fullwidth letter (NFKC folds it)"),
        ("/v1/stream/a/" + quote("e\u0301"), "decomposed accent (not NFC/NFKC)"),
        ("/v1/stream/a/" + quote("b\u200b"), "zero-width space"),
        ("/v1/stream/a/" + quote("\u202eb"), "right-to-left override"),
        ("/v1/stream/a/" + quote("ﬁle"), "ligature"),
    ],
)
def test_non_canonical_paths_are_refused(secured: Secured, target: str, why: str) -> None:
    _setup(secured, "b")
    token = {"Authorization": f"Bearer {secured.tokens['writer-a']}"}
    for method, body in (("GET", b""), ("POST", b"x"), ("PUT", b"")):
        headers = {**token, "Content-Type": "text/plain"}
        status, _, answer = raw_request(secured.url, method, target + "?offset=-1", headers, body)
        assert status in (400, 403), (why, method, status, answer)
        code = orjson.loads(answer)["error"]["code"]
        assert code in ("bad_path", "forbidden"), why
    assert _content(secured, "b") == (200, b"original")


def test_unicode_look_alikes_stay_other_paths(secured: Secured) -> None:
    """Cyrillic 'а' is NFKC-normal: a different path, which 'read:a/' does not cover."""
    with secured.client("admin") as admin:
        admin.put("/v1/stream/" + quote("а/x"), headers={"Content-Type": "text/plain"})
    with secured.client("reader-a") as reader:
        response = reader.get("/v1/stream/" + quote("а/x"), params={"offset": "-1"})
    assert response.status_code == 403


def test_a_revoked_token_is_refused_and_its_live_readers_are_cut(secured: Secured) -> None:
    """SSE and long-poll readers of a token end within seconds of its revocation (by another
    process: the CLI on the server's data directory)."""
    _setup(secured, "a/live")
    made = {"revocable": ["read:a/"]}
    from .conftest import issue_tokens

    token = issue_tokens(secured.data_dir, made)["revocable"]
    tail = httpx.head(
        secured.stream("a/live"), headers={"Authorization": f"Bearer {token}"}
    ).headers["stream-next-offset"]
    results: dict[str, object] = {}
    connected = threading.Event()

    def sse() -> None:
        lines: list[str] = []
        with httpx.stream(
            "GET",
            secured.stream("a/live"),
            params={"offset": tail, "live": "sse"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as response:
            results["sse-status"] = response.status_code
            for line in response.iter_lines():
                lines.append(line)
                connected.set()
        results["sse-ended"] = time.monotonic()
        results["sse-lines"] = lines

    def long_poll() -> None:
        response = httpx.get(
            secured.stream("a/live"),
            params={"offset": tail, "live": "long-poll"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        results["long-poll"] = response
        results["long-poll-ended"] = time.monotonic()

    threads = [threading.Thread(target=sse), threading.Thread(target=long_poll)]
    for thread in threads:
        thread.start()
    assert connected.wait(10)
    assert wait_until(lambda: secured.metric("millstream_http_live_readers") >= 2, 10)
    import subprocess
    import sys

    revoked_at = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "millstream", "tokens", "revoke", token,
         "--data-dir", str(secured.data_dir)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    for thread in threads:
        thread.join(20)
    assert results["sse-status"] == 200
    assert float(results["sse-ended"]) - revoked_at < 8  # type: ignore[arg-type]
    poll = results["long-poll"]
    assert isinstance(poll, httpx.Response)
    assert poll.status_code == 401
    assert _error(poll) == "token_revoked"
    assert float(results["long-poll-ended"]) - revoked_at < 8  # type: ignore[arg-type]
    # ... and the token no longer opens anything, live or not
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(secured.stream("a/live"), params={"offset": "-1"}).status_code == 401
        live = client.get(secured.stream("a/live"), params={"offset": "-1", "live": "sse"})
        assert live.status_code == 401
    assert _content(secured, "a/live") == (200, b"original")
    assert "is revoked: dropped from the cache, live sessions cut" in secured.log()


def test_metrics_need_a_metrics_scope(secured: Secured) -> None:
    with secured.client() as anonymous:
        assert anonymous.get("/metrics").status_code == 401
    with secured.client("reader-a") as reader:
        response = reader.get("/metrics")
        assert response.status_code == 403
        assert _error(response) == "forbidden"
    with secured.client("metrics") as scraper:
        response = scraper.get("/metrics")
        assert response.status_code == 200
        assert "millstream_auth_failures_total" in response.text
    with secured.client() as anonymous:
        assert anonymous.get("/health").status_code == 200  # load balancers need no token


def test_subscriptions_need_an_admin_token(secured: Secured) -> None:
    config = {"type": "pull-wake", "streams": ["a/one"], "wake_stream": "a/wake"}
    with secured.client("writer-a") as writer:
        response = writer.put("/v1/stream/__ds/subscriptions/s1", json=config)
        assert response.status_code == 403
    with secured.client() as anonymous:
        assert anonymous.put("/v1/stream/__ds/subscriptions/s1", json=config).status_code == 401
    with secured.client("admin") as admin:
        assert admin.get("/v1/stream/__ds/subscriptions/s1").status_code == 404


@pytest.mark.parametrize("path", ["/v1/topics", "/v1/cluster", "/api/v1/anomalies"])
def test_services_without_their_own_checks_are_admin_only(secured: Secured, path: str) -> None:
    """The Kafka SDK's admin API and the Sentinel's REST API check no scopes themselves."""
    with secured.client() as anonymous:
        assert anonymous.get(path).status_code == 401
    with secured.client("writer-a") as writer:
        response = writer.get(path)
        assert response.status_code == 403
        assert _error(response) == "forbidden"
    with secured.client("admin") as admin:
        assert admin.get(path).status_code == 200
