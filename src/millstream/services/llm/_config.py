"""The gateway's settings, read from the standard environment variables and ``serve`` flags,
and the model map from tiers (haiku, sonnet, opus) to a provider and its model id.

Keys and base URLs mean what the official SDKs make them mean: ``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL`` (the API root; ``/v1/messages`` is appended), ``OPENAI_API_KEY``,
``OPENAI_BASE_URL`` (ends in ``/v1``; ``/chat/completions`` is appended).

Which provider serves a tier: an explicit ``--llm-model TIER=PROVIDER:MODEL`` first; otherwise
the offline model when ``--llm-offline`` is given; otherwise Anthropic if it has a key, else
the OpenAI-compatible API if it has one; otherwise none (requests get 503 saying so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._anthropic import AnthropicProvider
from ._offline import OFFLINE_MODEL_ID, OfflineProvider
from ._openai import OpenAIProvider
from ._pricing import PriceTable
from ._provider import Provider, RetrySettings
from ._ratelimit import RateLimits
from ._routing import TIERS

__all__ = [
    "DEFAULT_MODELS",
    "GatewayConfig",
    "ModelTarget",
    "build_providers",
    "parse_model_override",
]

#: Provider model ids per tier when nothing overrides them.
DEFAULT_MODELS: Mapping[str, Mapping[str, str]] = {
    "anthropic": {
        "haiku": "claude-haiku-4-5",
        "sonnet": "claude-sonnet-4-5",
        "opus": "claude-opus-4-1",
    },
    "openai": {"haiku": "gpt-4o-mini", "sonnet": "gpt-4o", "opus": "gpt-4.1"},
    "offline": {tier: OFFLINE_MODEL_ID for tier in TIERS},
}
PROVIDERS = ("anthropic", "openai", "offline")


@dataclass(frozen=True, slots=True)
class ModelTarget:
    provider: str
    model: str


def parse_model_override(text: str) -> tuple[str, ModelTarget | str]:
    """``TIER=PROVIDER:MODEL`` or ``TIER=MODEL`` (the tier's default provider) → parts;
    ``ValueError`` with a readable message otherwise."""
    tier, equals, target = text.partition("=")
    tier = tier.strip().lower()
    if not equals or tier not in TIERS or not target.strip():
        raise ValueError(f"expected TIER=[PROVIDER:]MODEL with TIER one of {', '.join(TIERS)}")
    provider, colon, model = target.strip().partition(":")
    if colon and provider in PROVIDERS:
        return tier, ModelTarget(provider, model)
    return tier, target.strip()


@dataclass
class GatewayConfig:
    """Everything the gateway is built from (see the module docstring)."""

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    offline: bool = False
    offline_token_delay: float = 0.0
    model_overrides: Mapping[str, ModelTarget | str] = field(default_factory=dict)
    prices: PriceTable = field(default_factory=PriceTable)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    batch_concurrency: int = 8
    default_max_tokens: int = 1024
    max_tokens_limit: int = 128_000
    upstream_retry: RetrySettings = field(default_factory=RetrySettings)
    stall_timeout: float = 60.0
    generation_ttl_seconds: int | None = 7 * 24 * 3600
    max_body_size: int = 4 << 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> GatewayConfig:
        """Keys and base URLs from the standard variables; ``overrides`` win when not None."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "anthropic_api_key": env.get("ANTHROPIC_API_KEY") or None,
            "anthropic_base_url": env.get("ANTHROPIC_BASE_URL") or None,
            "openai_api_key": env.get("OPENAI_API_KEY") or None,
            "openai_base_url": env.get("OPENAI_BASE_URL") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def default_provider(self) -> str | None:
        if self.offline:
            return "offline"
        if self.anthropic_api_key:
            return "anthropic"
        if self.openai_api_key:
            return "openai"
        return None

    def check(self) -> None:
        """``ValueError`` naming what is missing when the model map uses a provider whose key
        is not set (``--llm-model opus=openai:gpt-4.1`` without ``OPENAI_API_KEY``)."""
        keys = {"anthropic": self.anthropic_api_key, "openai": self.openai_api_key}
        for tier, target in self.model_map().items():
            if target.provider in keys and not keys[target.provider]:
                variable = f"{target.provider.upper()}_API_KEY"
                raise ValueError(f"{tier} uses {target.provider} but {variable} is not set")

    def model_map(self) -> dict[str, ModelTarget]:
        """Tier → provider and model id, for the tiers something can serve."""
        default = self.default_provider()
        out: dict[str, ModelTarget] = {}
        for tier in TIERS:
            override = self.model_overrides.get(tier)
            if isinstance(override, ModelTarget):
                out[tier] = override
            elif default is not None:
                model = override if isinstance(override, str) else DEFAULT_MODELS[default][tier]
                out[tier] = ModelTarget(default, model)
        return out


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    """One adapter per provider the model map uses; ``ValueError`` if one lacks its key."""
    config.check()
    http: dict[str, tuple[type[AnthropicProvider | OpenAIProvider], str | None, str | None]] = {
        "anthropic": (AnthropicProvider, config.anthropic_api_key, config.anthropic_base_url),
        "openai": (OpenAIProvider, config.openai_api_key, config.openai_base_url),
    }
    providers: dict[str, Provider] = {}
    for name in dict.fromkeys(t.provider for t in config.model_map().values()):
        if name == "offline":
            providers[name] = OfflineProvider(config.offline_token_delay)
            continue
        adapter, key, base_url = http[name]
        assert key is not None  # check() said so
        providers[name] = adapter(
            key,
            base_url=base_url,
            retry=config.upstream_retry,
            stall_timeout=config.stall_timeout,
        )
    return providers
