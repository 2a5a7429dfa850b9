"""The LLM gateway service (seed 004): routes ``auto`` requests to haiku/sonnet/opus, holds the
provider keys, enforces per-project budgets and per-key rate limits, and runs every generation
as a durable stream that readers can resume. ``docs/llm.md`` has the whole story.
"""

from ._config import DEFAULT_MODELS, GatewayConfig, ModelTarget, parse_model_override
from ._gateway import LLMGateway
from ._ledger import Ledger, ProjectRecord
from ._pricing import DEFAULT_PRICES, Price, PriceTable
from ._provider import RetrySettings
from ._ratelimit import KEY_LIMITS_META, RateLimits

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_PRICES",
    "KEY_LIMITS_META",
    "GatewayConfig",
    "LLMGateway",
    "Ledger",
    "ModelTarget",
    "Price",
    "PriceTable",
    "ProjectRecord",
    "RateLimits",
    "RetrySettings",
    "parse_model_override",
]
