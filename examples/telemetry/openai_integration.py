"""An OpenAI client whose every call is tracked (seed 003's OpenAI example, rewritten around
`instrument()`: latency, tokens, cost and errors come from the response itself, streamed
responses included).

Needs `pip install openai`. The OpenAI SDK reads OPENAI_API_KEY and OPENAI_BASE_URL (point the
latter at any server that speaks the OpenAI API). Run `make serve` for the telemetry broker.
"""

import os

import openai

from millstream.telemetry import SentinelClient

BROKERS = os.environ.get("SENTINEL_BROKERS", "localhost:9092").split(",")
PRICES = {  # USD per 1,000 tokens: (prompt, completion); a simplified table
    "gpt-4": (0.03, 0.06),
    "gpt-3.5-turbo": (0.0015, 0.002),
}


def openai_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt_price, completion_price = PRICES.get(model, (0.0, 0.0))
    return (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000


class SentinelTrackedOpenAI:
    """OpenAI chat completions with one telemetry event per call."""

    def __init__(self, service_name: str, sentinel_brokers: list[str]) -> None:
        self.openai = openai.OpenAI(max_retries=0)
        self.service_name = service_name
        self.sentinel = SentinelClient(brokers=sentinel_brokers)

    def chat_completion(self, messages: list[dict[str, str]], model: str = "gpt-3.5-turbo"):
        with self.sentinel.instrument(
            service=self.service_name, model=model, prompt=messages, cost_usd=openai_cost
        ) as call:
            return call.record(self.openai.chat.completions.create(model=model, messages=messages))

    def chat_stream(self, messages: list[dict[str, str]], model: str = "gpt-3.5-turbo") -> str:
        with self.sentinel.instrument(
            service=self.service_name, model=model, prompt=messages, cost_usd=openai_cost
        ) as call:
            stream = self.openai.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            parts = [c.choices[0].delta.content or "" for c in call.stream(stream) if c.choices]
        return "".join(parts)

    def close(self) -> None:
        self.sentinel.close()


def main() -> None:
    client = SentinelTrackedOpenAI(service_name="openai-example", sentinel_brokers=BROKERS)
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    try:
        response = client.chat_completion(messages, model="gpt-3.5-turbo")
        print(f"Response: {response.choices[0].message.content}")
        print(f"Streamed: {client.chat_stream(messages, model='gpt-4')}")
        print("✓ Requests tracked")
    except openai.OpenAIError as e:
        print(f"Error (tracked too): {e}")
    finally:
        client.close()


if __name__ == "__main__":
    main()
