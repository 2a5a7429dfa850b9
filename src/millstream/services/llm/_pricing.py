"""Prices per 1,000 tokens, input and output, and the cost of a request in USD.

Defaults are the seed's table (haiku 0.00025/0.00125, sonnet 0.003/0.015, opus 0.015/0.075).
``serve --llm-prices FILE`` replaces or extends it with a JSON object
``{"NAME": {"input": USD, "output": USD}}``; ``NAME`` is a tier or a provider model id, and a
model id's own price wins over its tier's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable"]


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # USD per 1,000 input tokens
    output: float  # USD per 1,000 output tokens

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return round((input_tokens * self.input + output_tokens * self.output) / 1000, 10)


DEFAULT_PRICES: Mapping[str, Price] = {
    "haiku": Price(0.00025, 0.00125),
    "sonnet": Price(0.003, 0.015),
    "opus": Price(0.015, 0.075),
}


class PriceTable:
    """Tier and model prices (see the module docstring)."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES)
        if prices:
            self.prices.update(prices)

    @classmethod
    def from_json(cls, data: Any) -> PriceTable:
        if not isinstance(data, dict):
            raise ValueError("a price table is a JSON object of {name: {input, output}}")
        prices: dict[str, Price] = {}
        for name, entry in data.items():
            try:
                prices[str(name)] = Price(float(entry["input"]), float(entry["output"]))
            except (TypeError, KeyError, ValueError) as exc:
                raise ValueError(
                    f"price of {name!r} needs numeric 'input' and 'output' (USD per 1K tokens)"
                ) from exc
        return cls(prices)

    @classmethod
    def from_file(cls, path: Path) -> PriceTable:
        return cls.from_json(orjson.loads(path.read_bytes()))

    def price(self, tier: str, model_id: str | None = None) -> Price:
        if model_id is not None and model_id in self.prices:
            return self.prices[model_id]
        return self.prices.get(tier, DEFAULT_PRICES["sonnet"])

    def cost(self, tier: str, model_id: str | None, input_tokens: int, output_tokens: int) -> float:
        return self.price(tier, model_id).cost(input_tokens, output_tokens)
