"""Durable generations over real sockets: resume with only Last-Event-ID, idempotent attach,
disconnects that do not cancel, explicit cancel, provider faults, the openai SDK, and budgets
raced by concurrent requests."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from openai import OpenAI

from client.faultproxy import Fault, running_proxy
from millstream.cli import main
from millstream.client._sse import SSEParser
from millstream.llm import (
    AsyncClaudeClient,
    BadRequestError,
    ClaudeClient,
    GenerationError,
    ServerError,
)
from servers import wait_until

from .conftest import FakeProvider, Gateway, create_key, serve

WORDS = [f"w{i} " for i in range(8)]
PROVIDER_VARS = ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"]
CHAT = "/v1/chat/completions"


def body(prompt: str = "hello", **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": prompt}], "model": "haiku", **extra}


def events(raw: bytes) -> list[tuple[str | None, dict[str, object] | str]]:
    parser = SSEParser()
    out: list[tuple[str | None, dict[str, object] | str]] = []
    for event in [*parser.feed(raw), *parser.flush()]:
        data = event.data if event.data == "[DONE]" else orjson.loads(event.data)
        out.append((event.id, data))
    return out


def text_of(items: list[tuple[str | None, dict[str, object] | str]]) -> str:
    out = ""
    for _, data in items:
        if isinstance(data, dict) and data.get("choices"):
            out += data["choices"][0]["delta"].get("content") or ""  # type: ignore[index]
    return out


def read_until(chunks: Iterator[bytes], count: int) -> tuple[bytes, str]:
    """Read SSE bytes until ``count`` content events arrived; return them and the last id."""
    parser = SSEParser()
    seen, raw, last = 0, b"", ""
    for chunk in chunks:
        raw += chunk
        for event in parser.feed(chunk):
            if event.id:
                last = event.id
            if event.data != "[DONE]":
                delta = orjson.loads(event.data)["choices"][0]["delta"]
                seen += 1 if delta.get("content") else 0
            if seen >= count:
                return raw, last
    raise AssertionError("stream ended early")


def test_resume_with_only_last_event_id(gateway: Gateway, fake: FakeProvider) -> None:
    fake.config(token_delay=0.05)
    with httpx.Client(base_url=gateway.url, headers=gateway.headers(), timeout=30) as http:
        with http.stream("POST", CHAT, json=body(stream=True)) as first:
            assert first.status_code == 200
            resume_url = first.headers["x-millstream-resume-url"]
            raw, last_id = read_until(first.iter_raw(), 3)
        # The client connection is gone; the generation runs on. Reconnect two ways.
        again = http.post(CHAT, json=body(stream=True), headers={"Last-Event-ID": last_id})
        browser = httpx.get(
            gateway.url + resume_url, headers={"Last-Event-ID": last_id}, timeout=30
        )
    before = text_of(events(raw))
    assert before == "".join(WORDS[:3])
    for rest in (again, browser):
        assert rest.status_code == 200
        assert before + text_of(events(rest.content)) == "".join(WORDS)
        assert events(rest.content)[-1][1] == "[DONE]"
    assert len(fake.requests()) == 1  # one upstream call for all three readers


def test_client_stream_resumes_after_cut_connection(gateway: Gateway, fake: FakeProvider) -> None:
    fake.config(token_delay=0.03)
    with running_proxy(gateway.url) as proxy:
        # Cut the first streamed answer after its headers and a few events.
        proxy.add(Fault(match=lambda method, target: method == "POST", cut_after=900))
        with ClaudeClient(base_url=proxy.url, api_key=gateway.key, retry_delay=0.01) as client:
            tokens = list(client.stream("tell me"))
    assert tokens == WORDS  # every token exactly once, none repeated after the reconnect
    assert len(fake.requests()) == 1


def test_idempotency_key_attaches(gateway: Gateway, fake: FakeProvider) -> None:
    fake.config(token_delay=0.02)
    headers = {**gateway.headers(), "Idempotency-Key": "order-42"}

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as http:
            return list(await asyncio.gather(*(http.post(CHAT, json=body()) for _ in range(3))))

    answers = asyncio.run(both())
    later = httpx.post(gateway.url + CHAT, json=body(stream=True), headers=headers, timeout=30)
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    assert all(a.json()["content"] == "".join(WORDS) for a in answers)
    assert text_of(events(later.content)) == "".join(WORDS)
    assert len(fake.requests()) == 1
    other = httpx.post(gateway.url + CHAT, json=body("different"), headers=headers, timeout=30)
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_key_reused"


def test_disconnect_does_not_cancel_and_cancel_does(gateway: Gateway, fake: FakeProvider) -> None:
    fake.config(token_delay=0.05)
    with httpx.Client(base_url=gateway.url, headers=gateway.headers(), timeout=30) as http:
        with http.stream("POST", CHAT, json=body(stream=True)) as response:
            generation = response.headers["x-millstream-generation"]
            read_until(response.iter_raw(), 1)
        assert wait_until(
            lambda: http.get(f"/v1/generations/{generation}").json()["status"] == "completed"
        )
        status = http.get(f"/v1/generations/{generation}").json()
        assert status["content"] == "".join(WORDS)
        assert status["end"]["usage"]["output_tokens"] == 8

        fake.config(token_delay=0.2)
        with http.stream("POST", CHAT, json=body(stream=True)) as response:
            generation = response.headers["x-millstream-generation"]
            chunks = response.iter_raw()
            read_until(chunks, 1)
            cancelled = http.post(f"/v1/generations/{generation}/cancel").json()
            rest = b"".join(chunks)
    assert cancelled["cancelled"] is True
    assert cancelled["end"]["status"] == "cancelled"
    tail = events(rest)
    assert tail[-1][1] == "[DONE]"
    errors = [d for _, d in tail if isinstance(d, dict) and "error" in d]
    assert errors
    assert errors[0]["error"]["generation_status"] == "cancelled"
    usage = cancelled["end"]["usage"]
    assert 0 < usage["output_tokens"] < 8  # billed for what was generated, never zero


@pytest.mark.parametrize("kind", ["cut", "malformed"])
def test_stream_fault_mid_body_ends_failed(gateway: Gateway, fake: FakeProvider, kind: str) -> None:
    fake.fault(kind, after=3)
    with ClaudeClient(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
        tokens: list[str] = []

        def consume() -> None:
            for token in client.stream("x", model="haiku"):
                tokens.append(token)

        with pytest.raises(GenerationError) as caught:
            consume()
    assert tokens == WORDS[:3]
    assert caught.value.type in ("upstream_connection", "upstream_protocol")
    assert len(fake.requests()) == 1  # never retried once tokens were out


def test_upstream_storms_and_errors(gateway: Gateway, fake: FakeProvider) -> None:
    with ClaudeClient(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
        fake.fault("status", status=500, count=1)
        assert client.complete("x").content == "".join(WORDS)  # one 5xx: retried upstream
        fake.fault("status", status=400, count=1)
        with pytest.raises(BadRequestError) as bad:
            client.complete("x")
        assert getattr(bad.value, "status", None) == 400  # never retried
        fake.fault("status", status=529, count=-1, retry_after="0")
        with pytest.raises(ServerError) as storm:
            client.complete("x")
    assert getattr(storm.value, "status", None) == 503
    assert storm.value.retryable
    statuses = [r["path"] for r in fake.requests()]
    assert len(statuses) == 2 + 1 + 4  # 500+ok, 400, 1 + 3 retries of the storm


def test_openai_sdk_completes_and_streams(gateway: Gateway) -> None:
    client = OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0)
    try:
        response = client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "hi"}]
        )
        assert response.choices[0].message.content == "".join(WORDS)
        assert response.usage is not None
        assert response.usage.completion_tokens == 8
        chunks = client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "".join(WORDS)
        assert [m.id for m in client.models.list()] == ["auto", "haiku", "sonnet", "opus"]
    finally:
        client.close()


def test_openai_compatible_provider_and_price_table(fake: FakeProvider, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_bytes(
        orjson.dumps(
            {"gpt-fake": {"input": 1.0, "output": 2.0}, "haiku": {"input": 3, "output": 4}}
        )
    )
    args = ["--llm-model", "sonnet=openai:gpt-fake", "--llm-prices", str(prices)]
    with (
        serve(fake, tmp_path / "data", *args) as gw,
        ClaudeClient(base_url=gw.url, api_key=gw.key) as client,
    ):
        sonnet = client.complete("hi", model="sonnet")
        assert sonnet.content == "".join(WORDS)
        assert "".join(client.stream("hi", model="sonnet")) == "".join(WORDS)
        haiku = client.complete("hi", model="haiku")
        opus = client.complete("hi", model="opus")
    sent = fake.requests()
    assert [r["path"] for r in sent] == ["/v1/chat/completions"] * 2 + ["/v1/messages"] * 2
    assert sent[0]["headers"]["Authorization"] == "Bearer sk-openai-fake-key"
    assert sent[1]["body"]["stream_options"] == {"include_usage": True}
    # A model id's price wins over its tier's; tiers not in the file keep the defaults.
    for response, (per_in, per_out) in ((sonnet, (1, 2)), (haiku, (3, 4)), (opus, (0.015, 0.075))):
        usage = response.usage
        expected = (usage.input_tokens * per_in + usage.output_tokens * per_out) / 1000
        assert response.cost == pytest.approx(expected)


def test_serve_refuses_llm_flags_that_cannot_work(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text('{"haiku": {"input": "cheap"}}')
    cases = [
        (["--llm-model", "sonnet"], "TIER=[PROVIDER:]MODEL"),
        (["--llm-model", "opus=openai:gpt-4.1"], "OPENAI_API_KEY is not set"),
        (["--llm-prices", str(bad)], "numeric 'input' and 'output'"),
        (["--llm-rpm", "-1"], "--llm-rpm"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(
            main, ["serve", "--memory", "--port", "0", *args], env=dict.fromkeys(PROVIDER_VARS)
        )
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, result.output


def test_concurrent_requests_never_overspend(gateway: Gateway) -> None:
    budget = 400
    key = create_key(gateway.data_dir, f"race:{budget}")

    async def race() -> list[object]:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=key, max_retries=0) as c:
            calls = [c.complete(f"prompt {i}", model="haiku") for i in range(40)]
            return list(await asyncio.gather(*calls, return_exceptions=True))

    results = asyncio.run(race())
    ok = [r for r in results if not isinstance(r, BaseException)]
    with ClaudeClient(base_url=gateway.url, api_key=key) as client:
        stats = client.get_usage()
    assert ok
    assert len(ok) < 40
    assert stats.total_tokens == sum(r.usage.total_tokens for r in ok)  # type: ignore[attr-defined]
    assert stats.total_tokens <= budget


def test_bad_input_gets_json_errors(gateway: Gateway) -> None:
    cases: list[tuple[bytes, int]] = [
        (b"not json", 400),
        (b"[]", 400),
        (orjson.dumps({"messages": []}), 400),
        (orjson.dumps({"messages": [{"role": "robot", "content": "x"}]}), 400),
        (orjson.dumps({**body(), "timeout": 0}), 400),
        (orjson.dumps({**body(), "timeout": 301}), 400),
        (orjson.dumps({**body(), "max_tokens": -1}), 400),
        (orjson.dumps({**body(), "model": "gpt-99"}), 400),
        (orjson.dumps({**body(), "stream": "yes"}), 400),
        (b"{" + b" " * (5 << 20) + b"}", 413),
    ]
    with httpx.Client(base_url=gateway.url, headers=gateway.headers(), timeout=30) as http:
        for content, status in cases:
            answer = http.post(CHAT, content=content)
            assert answer.status_code == status, content[:60]
            assert isinstance(answer.json()["detail"], str)
        bad_resume = http.post(CHAT, json=body(), headers={"Last-Event-ID": "gen-x:1"})
        assert bad_resume.status_code == 400
        unknown = http.get("/v1/generations/gen-" + "0" * 32)
        assert unknown.status_code == 404
        assert http.get(CHAT).status_code == 405
        assert http.get("/v1/usage?period=year").status_code == 400


def test_route_and_models(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url, headers=gateway.headers(), timeout=30) as http:
        answer = http.post("/v1/route", json={"prompt": "debug this crash", "context_size": 10})
        large = http.post("/v1/route", json={"prompt": "hi", "context_size": 20_000})
    assert answer.json()["recommended_model"] == "sonnet"
    assert answer.json()["budget_status"]["status"] == "unlimited"
    assert large.json()["recommended_model"] == "opus"


def test_budget_error_tells_sdks_not_to_retry(gateway: Gateway) -> None:
    key = create_key(gateway.data_dir, "empty:0")
    answer = httpx.post(gateway.url + CHAT, json=body(), headers=gateway.headers(key), timeout=30)
    assert answer.status_code == 429
    assert answer.headers["x-should-retry"] == "false"
    assert answer.json() == {
        "detail": "Budget exceeded for project empty",
        "error": {"type": "budget_exceeded", "message": "Budget exceeded for project empty"},
    }


def test_no_provider_configured_says_so(tmp_path: Path) -> None:
    with serve(None, tmp_path) as gw:
        health = httpx.get(gw.url + "/health", timeout=10).json()
        answer = httpx.post(gw.url + CHAT, json=body(), headers=gw.headers(), timeout=10)
    assert health["status"] == "ok"  # the node is fine; the gateway says what it lacks
    assert health["services"]["llm"]["configured"] is False
    assert answer.status_code == 503
    assert "ANTHROPIC_API_KEY" in answer.json()["detail"]
    assert any("no provider configured" in line for line in gw.process.output)


def test_offline_model_is_labelled_and_deterministic(tmp_path: Path) -> None:
    with (
        serve(None, tmp_path, "--llm-offline") as gw,
        ClaudeClient(base_url=gw.url, api_key=gw.key) as client,
    ):
        first = client.complete("hello world")
        second = client.complete("hello world")
    assert (
        first.content == second.content == "[millstream offline model] you said: hello world done. "
    )
    assert any("OFFLINE MODEL" in line for line in gw.process.output)


def test_threads_share_one_client(gateway: Gateway) -> None:
    results: list[str] = []
    with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
        threads = [
            threading.Thread(target=lambda: results.append(client.complete("hi").content))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == ["".join(WORDS)] * 4


def test_docs_client_example_runs(gateway: Gateway) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "llm.md").read_text()
    (snippet,) = re.findall(r"## Client example\n\n```python\n(.*?)```", text, re.S)
    namespace: dict[str, object] = {"BASE_URL": gateway.url, "API_KEY": gateway.key}
    exec(compile(snippet, "<docs/llm.md>", "exec"), namespace)
    assert namespace["stats"].total_tokens > 0  # type: ignore[attr-defined]
