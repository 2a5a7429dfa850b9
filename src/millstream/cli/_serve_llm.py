"""``millstream serve``'s LLM gateway flags and the ``GatewayConfig`` they build.

Provider keys and base URLs take the official SDKs' environment variables as defaults
(``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), so
``export ANTHROPIC_API_KEY=...; millstream serve`` is all it takes; the flags override them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from millstream.services.llm import GatewayConfig, ModelTarget

__all__ = ["gateway_config", "llm_options"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option(
        "--llm/--no-llm",
        default=True,
        show_default=True,
        help="Run the LLM gateway (/v1/chat/completions, /v1/batch, /v1/usage; docs/llm.md).",
    ),
    click.option(
        "--anthropic-api-key",
        envvar="ANTHROPIC_API_KEY",
        show_envvar=True,
        default=None,
        help="Anthropic API key (prefer the environment variable: flags show up in ps).",
    ),
    click.option(
        "--anthropic-base-url",
        envvar="ANTHROPIC_BASE_URL",
        show_envvar=True,
        default=None,
        help="Anthropic API root; /v1/messages is appended, as the official SDK does.",
    ),
    click.option(
        "--openai-api-key",
        envvar="OPENAI_API_KEY",
        show_envvar=True,
        default=None,
        help="Key of an OpenAI-compatible API (prefer the environment variable).",
    ),
    click.option(
        "--openai-base-url",
        envvar="OPENAI_BASE_URL",
        show_envvar=True,
        default=None,
        help="OpenAI-compatible API base ending in /v1; /chat/completions is appended.",
    ),
    click.option(
        "--llm-model",
        "llm_models",
        multiple=True,
        metavar="TIER=[PROVIDER:]MODEL",
        help="Serve a tier (haiku, sonnet, opus) with a provider's model, e.g. "
        "sonnet=openai:gpt-4o or opus=claude-opus-4-1 (repeatable).",
    ),
    click.option(
        "--llm-offline",
        is_flag=True,
        help="Answer with the built-in offline model: deterministic echo text labelled "
        "'[millstream offline model]', for demos and tests; never a real LLM.",
    ),
    click.option(
        "--llm-rpm",
        type=click.IntRange(min=0),
        default=100,
        show_default=True,
        help="Requests per minute per API key (0: no limit); `keys create --rpm` overrides.",
    ),
    click.option(
        "--llm-tpm",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Tokens per minute per API key, counting prompt estimate + max_tokens "
        "(0: no limit); `keys create --tpm` overrides.",
    ),
    click.option(
        "--llm-prices",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help='JSON price table {"NAME": {"input": USD, "output": USD}} per 1K tokens; NAME '
        "is a tier or a provider model id; it extends the defaults (docs/llm.md).",
    ),
    click.option(
        "--llm-batch-concurrency",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        help="Generations one /v1/batch request runs at once.",
    ),
]


def llm_options(command: F) -> F:
    """Add the LLM flags to ``command`` (they arrive as keyword arguments)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def gateway_config(values: dict[str, Any]) -> GatewayConfig | None:
    """The gateway's configuration from the flags' values (``None`` with ``--no-llm``);
    ``click.BadParameter``/``UsageError`` for a flag that cannot work."""
    if not values["llm"]:
        return None
    # Here, not at import: the client commands start without the server's modules.
    from millstream.services.llm import GatewayConfig, PriceTable, RateLimits, parse_model_override

    overrides: dict[str, ModelTarget | str] = {}
    for text in values["llm_models"]:
        try:
            tier, target = parse_model_override(text)
        except ValueError as exc:
            raise click.BadParameter(f"{text!r}: {exc}", param_hint="--llm-model") from exc
        overrides[tier] = target
    prices = PriceTable()
    if values["llm_prices"] is not None:
        try:
            prices = PriceTable.from_file(values["llm_prices"])
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError too
            raise click.BadParameter(
                f"{values['llm_prices']}: {exc}", param_hint="--llm-prices"
            ) from exc
    config = GatewayConfig(
        anthropic_api_key=values["anthropic_api_key"] or None,
        anthropic_base_url=values["anthropic_base_url"] or None,
        openai_api_key=values["openai_api_key"] or None,
        openai_base_url=values["openai_base_url"] or None,
        offline=values["llm_offline"],
        model_overrides=overrides,
        prices=prices,
        rate_limits=RateLimits(values["llm_rpm"] or None, values["llm_tpm"] or None),
        batch_concurrency=values["llm_batch_concurrency"],
    )
    try:
        config.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    return config
