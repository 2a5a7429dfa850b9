"""The seed's 23 client tests, each against a real gateway process in front of the fake
provider (no mocks): sync client, async client, and mixed use."""

from __future__ import annotations

import time

import pytest

from millstream.llm import (
    AsyncClaudeClient,
    AuthenticationError,
    BudgetExceededError,
    ClaudeAPIError,
    ClaudeClient,
    Model,
    RateLimitError,
    Response,
    TimeoutError,
)

from .conftest import FakeProvider, Gateway, create_key

WORDS = "w0 w1 w2 w3 w4 w5 w6 w7 "


class TestClaudeClient:
    def test_client_initialization(self, gateway: Gateway) -> None:
        default = ClaudeClient()
        assert (default.base_url, default.project_id, default.timeout) == (
            "http://localhost:8080",
            "default",
            30.0,
        )
        assert (default.max_retries, default.retry_delay, default.api_key) == (3, 1.0, None)
        default.close()
        client = ClaudeClient(
            base_url=gateway.url + "/",
            api_key=gateway.key,
            project_id="p",
            timeout=5,
            max_retries=1,
        )
        assert client.base_url == gateway.url
        assert client.complete("hello").project_id == gateway.project  # the key decides
        client.close()

    def test_context_manager(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            assert client.complete("hi").content == WORDS
        assert client.client.is_closed

    def test_client_complete(self, gateway: Gateway, fake: FakeProvider) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            response = client.complete("Write a haiku about Python")
        assert isinstance(response, Response)
        assert response.content == WORDS
        assert response.id.startswith("gen-")
        assert response.usage.output_tokens == 8
        assert response.usage.total_tokens == response.usage.input_tokens + 8
        # sonnet prices: 0.003 / 0.015 per 1K tokens, from the provider's own counts
        expected = (response.usage.input_tokens * 0.003 + 8 * 0.015) / 1000
        assert response.cost == pytest.approx(expected)
        (sent,) = fake.requests()
        assert sent["path"] == "/v1/messages"
        assert sent["headers"]["x-api-key"] == "sk-ant-fake-key"
        assert sent["body"]["messages"] == [
            {"role": "user", "content": "Write a haiku about Python"}
        ]

    def test_client_complete_with_model(self, gateway: Gateway, fake: FakeProvider) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            assert client.complete("x", model=Model.HAIKU).model == "haiku"
            assert client.complete("x", model="opus").model == "opus"
            assert client.complete("list the files").model == "haiku"  # auto: short simple
            assert client.complete("Please review this design").model == "sonnet"
        models = [r["body"]["model"] for r in fake.requests()]
        assert models == [
            "claude-haiku-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "claude-sonnet-4-5",
        ]

    def test_client_stream(self, gateway: Gateway, fake: FakeProvider) -> None:
        fake.config(token_delay=0.05)
        arrivals: list[float] = []
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            tokens = []
            for token in client.stream("tell a story"):
                tokens.append(token)
                arrivals.append(time.monotonic())
        assert tokens == [f"w{i} " for i in range(8)]
        # Token by token: the first arrived well before the last was written.
        assert arrivals[-1] - arrivals[0] >= 0.2
        assert fake.requests()[0]["body"]["stream"] is True

    def test_client_batch(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            result = client.batch(["Hello", "Count to 5", "Name a color"], model="haiku")
        assert (result.total, result.completed, result.failed) == (3, 3, 0)
        assert [r.id for r in result.results] == ["0", "1", "2"]
        assert all(r.content == WORDS and r.status == "completed" for r in result.results)
        assert result.total_tokens == sum(r.usage.total_tokens for r in result.results if r.usage)
        assert result.total_cost == pytest.approx(sum(r.cost or 0 for r in result.results))

    def test_client_get_usage(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            first = client.complete("hi", model="haiku")
            second = client.complete("hi", model="sonnet")
            stats = client.get_usage(period="day")
        assert stats.project_id == gateway.project
        assert stats.period == "day"
        assert stats.total_tokens == first.usage.total_tokens + second.usage.total_tokens
        assert stats.total_cost == pytest.approx(first.cost + second.cost)
        assert stats.by_model["haiku"]["tokens"] == first.usage.total_tokens
        assert stats.limit is None
        assert stats.remaining is None

    def test_client_health(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url) as client:  # no key needed
            health = client.health()
        assert health["status"] == "ok"
        llm = health["services"]["llm"]
        assert llm["providers"]["anthropic"]["status"] == "configured"
        assert llm["models"]["sonnet"] == "anthropic:claude-sonnet-4-5"

    def test_error_handling_authentication(self, gateway: Gateway) -> None:
        for key in (None, "ms_0123456789abcdef_wrongwrongwrongwrong", "garbage"):
            with (
                ClaudeClient(base_url=gateway.url, api_key=key, retry_delay=0) as client,
                pytest.raises(AuthenticationError) as caught,
            ):
                client.complete("hi")
            assert caught.value.status == 401
            assert not caught.value.retryable
            assert "millstream keys create" in caught.value.hint

    def test_error_handling_budget_exceeded(self, gateway: Gateway) -> None:
        key = create_key(gateway.data_dir, "tight:60")
        with ClaudeClient(base_url=gateway.url, api_key=key, retry_delay=0) as client:
            client.complete("hi")  # 8 output tokens + prompt fit in 60
            used = client.get_usage().total_tokens
            while used < 60:
                try:
                    client.complete("hi")
                except BudgetExceededError:
                    break
                used = client.get_usage().total_tokens
            with pytest.raises(BudgetExceededError) as caught:
                client.complete("hi")
            stats = client.get_usage()
        assert caught.value.status == 429
        assert not caught.value.retryable
        assert "Budget exceeded for project tight" in caught.value.message
        assert stats.total_tokens <= 60
        assert stats.limit == 60

    def test_error_handling_rate_limit(self, gateway: Gateway) -> None:
        # The server allows 1,000 requests a minute; this key's own limit is 2.
        key = create_key(gateway.data_dir, "limited", "--rpm", "2")
        with ClaudeClient(base_url=gateway.url, api_key=key, max_retries=0) as client:
            client.complete("one")
            client.complete("two")
            with pytest.raises(RateLimitError) as caught:
                client.complete("three")
        error = caught.value
        assert error.status == 429
        assert error.retryable
        assert error.retry_after is not None
        assert 1 <= error.retry_after <= 120

    def test_retry_logic(self, gateway: Gateway, fake: FakeProvider) -> None:
        # Upstream: two 529 overloads with Retry-After, then success; the gateway retries.
        fake.fault("status", status=529, count=2, retry_after="0.05")
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            assert client.complete("hi").content == WORDS
        assert len(fake.requests()) == 3

    def test_timeout_error(self, gateway: Gateway, fake: FakeProvider) -> None:
        fake.fault("stall", seconds=3)
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key, max_retries=0) as client:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                client.complete("hi", timeout=1)
        assert caught.value.status == 504
        assert time.monotonic() - started < 3


class TestAsyncClaudeClient:
    async def test_async_client_initialization(self, gateway: Gateway) -> None:
        client = AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key, timeout=7)
        assert client.timeout == 7
        assert client.project_id == "default"
        assert (await client.complete("hi")).content == WORDS
        await client.close()
        assert client.client.is_closed

    async def test_async_context_manager(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            assert (await client.complete("hi")).usage.output_tokens == 8
        assert client.client.is_closed

    async def test_async_client_complete(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            response = await client.complete("hello", model="opus")
        assert response.model == "opus"
        assert response.content == WORDS

    async def test_async_client_stream(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            tokens = [token async for token in client.stream("hello")]
        assert tokens == [f"w{i} " for i in range(8)]

    async def test_async_client_batch(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            result = await client.batch([f"prompt {i}" for i in range(12)])
        assert result.completed == 12
        assert result.failed == 0
        assert [r.prompt for r in result.results] == [f"prompt {i}" for i in range(12)]

    async def test_async_client_get_usage(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            response = await client.complete("hi")
            stats = await client.get_usage(period="week")
        assert stats.total_tokens == response.usage.total_tokens
        assert stats.period == "week"

    async def test_async_error_handling(self, gateway: Gateway) -> None:
        async with AsyncClaudeClient(base_url=gateway.url, api_key="nope") as client:
            with pytest.raises(AuthenticationError):
                await client.complete("hi")
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            with pytest.raises(ClaudeAPIError) as caught:
                await client.get_usage(period="year")
        assert caught.value.status == 400
        assert "period" in caught.value.message

    async def test_async_retry_logic(self, gateway: Gateway, fake: FakeProvider) -> None:
        fake.fault("status", status=429, count=2, retry_after="0.05")
        async with AsyncClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            assert (await client.complete("hi")).content == WORDS
        assert len(fake.requests()) == 3


class TestClientIntegration:
    def test_multiple_requests_same_client(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            ids = {client.complete(f"request {i}").id for i in range(5)}
        assert len(ids) == 5

    def test_mixed_operations(self, gateway: Gateway) -> None:
        with ClaudeClient(base_url=gateway.url, api_key=gateway.key) as client:
            complete = client.complete("hi")
            streamed = "".join(client.stream("hi"))
            batch = client.batch(["a", "b"])
            stats = client.get_usage()
            health = client.health()
        assert complete.content == streamed == WORDS
        spent = complete.usage.total_tokens + batch.total_tokens
        assert stats.total_tokens > spent  # the stream is billed too, never at zero
        assert health["services"]["llm"]["status"] == "ok"
