"""instrument(): events built from the official OpenAI and Anthropic SDKs' responses (plain and
streamed) served by our fake provider, sent through a real client to a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import openai
import pytest

from millstream.telemetry import (
    AsyncSentinelClient,
    SentinelClient,
    SentinelConfig,
    TelemetryEvent,
)

from .brokers import Tansu, consume
from .providers import FIRST_TOKEN_DELAY, fake_provider

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "capital of France"},
]


@dataclass
class Harness:
    provider: str
    config: SentinelConfig
    broker: Tansu
    sent = 0

    def events(self) -> list[TelemetryEvent]:
        values = consume(self.broker.bootstrap, self.config.topic, self.sent, timeout=15)
        return sorted(
            (TelemetryEvent.from_json(v) for v in values), key=lambda e: e.metadata.get("n", "")
        )


@pytest.fixture
def harness(broker: Tansu, spool_dir: str) -> Iterator[Harness]:
    config = SentinelConfig(
        brokers=[broker.bootstrap],
        topic="instrumented",
        enable_idempotence=False,
        spool_dir=spool_dir,
        request_timeout_ms=5000,
    )
    with fake_provider() as url:
        yield Harness(url, config, broker)


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0)


def test_openai_chat_completion(harness: Harness) -> None:
    oa = openai_client(harness.provider)
    with SentinelClient(config=harness.config) as client:
        with client.instrument(service="chat", model="gpt-4o", prompt=MESSAGES) as call:
            reply = call.record(oa.chat.completions.create(model="gpt-4o", messages=MESSAGES))
        harness.sent = 1
    assert reply.choices[0].message.content == "echo: capital of France"
    (event,) = harness.events()
    assert event.service_name == "chat"
    assert event.model == "gpt-4o"
    assert event.prompt.text == "You are terse.\ncapital of France"
    assert (event.prompt.tokens, event.response.tokens) == (6, 4)  # the provider's usage
    assert event.response.text == "echo: capital of France"
    assert event.response.finish_reason == "stop"
    assert event.metadata["provider"] == "openai"
    assert event.metadata["response_model"] == "gpt-4o-2024"
    assert event.metadata["response_id"] == "chatcmpl-test"
    assert "tokens_estimated" not in event.metadata
    assert event.latency_ms > 0
    assert event.to_otel_attributes()["gen_ai.provider.name"] == "openai"


def test_openai_stream_records_time_to_first_token(harness: Harness) -> None:
    oa = openai_client(harness.provider)
    with SentinelClient(config=harness.config) as client:
        with client.instrument(service="chat", model="gpt-4o", prompt=MESSAGES) as call:
            stream = oa.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            text = "".join(
                c.choices[0].delta.content or "" for c in call.stream(stream) if c.choices
            )
        harness.sent = 1
    assert text == "echo: capital of France"
    (event,) = harness.events()
    assert event.response.text == text
    assert (event.prompt.tokens, event.response.tokens) == (6, 4)
    assert event.metadata["streamed"] == "true"
    first_token = float(event.metadata["time_to_first_token_ms"])
    assert first_token >= FIRST_TOKEN_DELAY * 1000 * 0.9
    assert event.latency_ms >= first_token


def test_stream_without_usage_estimates_tokens(harness: Harness) -> None:
    oa = openai_client(harness.provider)
    with SentinelClient(config=harness.config) as client:
        with client.instrument(service="chat", model="gpt-4o", prompt="capital of France") as call:
            for _ in call.stream(
                oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            ):
                pass
        harness.sent = 1
    (event,) = harness.events()
    assert event.metadata["tokens_estimated"] == "true"
    assert event.prompt.tokens == 5  # ceil(17 characters / 4)
    assert event.response.tokens == 6  # ceil(23 / 4)


async def test_async_openai_stream(harness: Harness) -> None:
    oa = openai.AsyncOpenAI(base_url=f"{harness.provider}/v1", api_key="test", max_retries=0)
    async with AsyncSentinelClient(config=harness.config) as client:
        async with client.instrument(service="chat-async", prompt=MESSAGES) as call:
            stream = await oa.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in call.astream(stream):
                pass
        harness.sent = 1
    await oa.close()
    (event,) = harness.events()
    assert event.model == "gpt-4o-mini-2024"  # no model given: the response's
    assert event.response.tokens == 4
    assert "time_to_first_token_ms" in event.metadata


def test_anthropic_message_and_stream(harness: Harness) -> None:
    claude = anthropic.Anthropic(base_url=harness.provider, api_key="test", max_retries=0)
    question = [{"role": "user", "content": "capital of France"}]
    with SentinelClient(config=harness.config) as client:
        with client.instrument(
            service="claude", model="claude-x", prompt=question, metadata={"n": "1"}
        ) as call:
            call.record(claude.messages.create(model="claude-x", max_tokens=50, messages=question))
        with client.instrument(
            service="claude", model="claude-x", prompt=question, metadata={"n": "2"}
        ) as call:
            stream = claude.messages.create(
                model="claude-x", max_tokens=50, messages=question, stream=True
            )
            for _ in call.stream(stream):
                pass
        harness.sent = 2
    plain, streamed = harness.events()
    for event in (plain, streamed):
        assert event.metadata["provider"] == "anthropic"
        assert event.response.text == "echo: capital of France"
        assert event.response.finish_reason == "end_turn"
        assert (event.prompt.tokens, event.response.tokens) == (3, 4)
        assert event.metadata["response_id"] == "msg_test"
    assert float(streamed.metadata["time_to_first_token_ms"]) >= FIRST_TOKEN_DELAY * 900
    assert "time_to_first_token_ms" not in plain.metadata


def test_decorator_and_failures(harness: Harness) -> None:
    oa = openai_client(harness.provider)
    with SentinelClient(config=harness.config) as client:

        @client.instrument(service="deco", cost_usd=lambda model, p, c: p * 1e-6 + c * 2e-6)
        def ask(*, messages: list[dict[str, str]], model: str) -> object:
            return oa.chat.completions.create(model=model, messages=messages)

        ask(messages=MESSAGES, model="gpt-4o")
        with pytest.raises(openai.InternalServerError):
            ask(messages=MESSAGES, model="fail")
        harness.sent = 2
    ok, failed = sorted(harness.events(), key=lambda e: e.model != "gpt-4o")
    assert ok.prompt.text == "You are terse.\ncapital of France"
    assert ok.cost_usd == pytest.approx(6e-6 + 8e-6)
    assert not ok.errors
    assert failed.model == "fail"
    assert failed.response.finish_reason == "error"
    assert failed.errors
    assert failed.errors[0].startswith("InternalServerError")
    assert failed.metadata["error_type"] == "InternalServerError"
    assert failed.to_otel_attributes()["error.type"] == "InternalServerError"
