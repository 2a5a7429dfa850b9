"""Where ``millstream serve`` settings come from: flags, ``MILLSTREAM_*`` variables, a TOML file.

Every option of ``serve`` is also read from the environment variable ``MILLSTREAM_`` + its name
in capitals (``--kafka-port`` → ``MILLSTREAM_KAFKA_PORT``; flags that had a conventional
variable keep it as a fallback, e.g. ``ANTHROPIC_API_KEY``) and from a TOML file given with
``--config FILE`` (or ``MILLSTREAM_CONFIG``), whose keys are the option names (``kafka-port``
or ``kafka_port``), at the top level or in a ``[serve]`` table. Precedence, highest first:
the command line, the environment, the file, the built-in default (click's own order for
``envvar`` and ``default_map``). An unknown key in the file is an error, so a typo never goes
unnoticed. ``--print-config`` shows the effective settings as TOML, each with where it came
from, secrets masked.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

__all__ = ["SECRET_SETTINGS", "configurable", "effective_settings", "env_name"]

F = TypeVar("F", bound=Callable[..., Any])

#: Settings whose values never appear in ``--print-config`` or logs (``store``: a database
#: URL, which may hold a password).
SECRET_SETTINGS = frozenset({"anthropic_api_key", "openai_api_key", "store"})
_NOT_SETTINGS = frozenset({"config", "print_config", "help"})
_SOURCES = {
    ParameterSource.COMMANDLINE: "command line",
    ParameterSource.ENVIRONMENT: "environment",
    ParameterSource.DEFAULT_MAP: "config file",
    ParameterSource.DEFAULT: "default",
}


def env_name(name: str) -> str:
    """``kafka_port`` → ``MILLSTREAM_KAFKA_PORT``."""
    return "MILLSTREAM_" + name.upper()


def _load_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    try:
        with value.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"{value}: {exc}", ctx=ctx, param=param) from exc
    serve = data.get("serve")
    table: dict[str, Any] = serve if isinstance(serve, dict) else data
    options = {
        p.name: p
        for p in ctx.command.params
        if isinstance(p, click.Option) and p.name and p.name not in _NOT_SETTINGS
    }
    defaults: dict[str, Any] = {}
    for key, setting in table.items():
        name = key.replace("-", "_")
        if name not in options:
            raise click.BadParameter(
                f"{value}: unknown setting {key!r} (the settings are serve's options: "
                f"{', '.join(sorted(options))})",
                ctx=ctx,
                param=param,
            )
        if isinstance(setting, dict):
            raise click.BadParameter(f"{value}: {key!r} must be a value, not a table", ctx=ctx)
        defaults[name] = setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def configurable(command: F) -> F:
    """Give every option of ``command`` its ``MILLSTREAM_*`` variable and add ``--config``
    (apply above the other option decorators)."""
    command = click.option(
        "--config",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        is_eager=True,
        expose_value=False,
        envvar="MILLSTREAM_CONFIG",
        show_envvar=True,
        callback=_load_file,
        help="A TOML file of settings (keys: these options' names). Precedence: command "
        "line, then MILLSTREAM_* variables, then the file.",
    )(command)
    for param in getattr(command, "__click_params__", []):
        if not isinstance(param, click.Option) or not param.name or param.name in _NOT_SETTINGS:
            continue
        own = param.envvar
        extra = [own] if isinstance(own, str) else list(own or [])
        param.envvar = [env_name(param.name), *extra]
        param.show_envvar = True
    return command


def effective_settings(ctx: click.Context) -> list[tuple[str, Any, str]]:
    """``(name, value, source)`` for every setting of the running command, secrets masked."""
    rows: list[tuple[str, Any, str]] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or not param.name or param.name in _NOT_SETTINGS:
            continue
        value = ctx.params.get(param.name)
        source = ctx.get_parameter_source(param.name)
        if param.name in SECRET_SETTINGS and value:
            value = "********"
        rows.append((param.name, value, _SOURCES.get(source, "default") if source else "default"))
    return rows


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Iterable):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return _toml(str(value))


def format_settings(rows: list[tuple[str, Any, str]]) -> str:
    """The rows as TOML a ``--config`` file accepts; unset settings commented out."""
    width = max(len(name) for name, _, _ in rows)
    lines = []
    for name, value, source in rows:
        if value is None:
            lines.append(f"# {name} = (not set)".ljust(width + 24) + f"  # {source}")
        else:
            lines.append(
                f"{name.ljust(width)} = {_toml(value)}".ljust(width + 24) + f"  # {source}"
            )
    return "\n".join(lines)
