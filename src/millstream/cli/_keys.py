"""``millstream keys create | list | revoke`` and ``millstream usage``: API keys and LLM usage in
a data directory, the same one ``serve --data-dir`` uses, also while the server runs (both
processes share the SQLite file; the server reads keys and budgets from it on every request).

``keys create`` prints the new key alone on the last line of standard output, so scripts can
capture it with ``| tail -n1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import main
from ._datadir import DATA_DIR_OPTION as _DATA_DIR
from ._datadir import list_tokens, print_table
from ._datadir import run_on_data_dir as _run
from ._datadir import token_id as _parse_id
from ._datadir import when as _when

if TYPE_CHECKING:
    from millstream.log import Store

__all__ = ["keys_group", "usage_command"]


@main.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys (a key with scope llm:PROJECT uses the LLM gateway)."""


_RPM = click.option(
    "--rpm",
    type=click.IntRange(min=0),
    default=None,
    help="This key's requests per minute (0: no limit; default: serve's --llm-rpm).",
)
_TPM = click.option(
    "--tpm",
    type=click.IntRange(min=0),
    default=None,
    help="This key's tokens per minute (0: no limit; default: serve's --llm-tpm).",
)


def _limits_meta(rpm: int | None, tpm: int | None) -> dict[str, int]:
    return {k: v for k, v in (("rpm", rpm), ("tpm", tpm)) if v is not None}


def _limits_text(meta: dict[str, Any]) -> str:
    from millstream.services.llm import KEY_LIMITS_META

    own = meta.get(KEY_LIMITS_META) or {}
    parts = [f"{k} {'unlimited' if v == 0 else v}" for k, v in sorted(own.items())]
    return ", ".join(parts) or "default"


@keys_group.command("create")
@click.option("--project", required=True, help="The project the key spends for.")
@click.option("--budget-tokens", type=click.IntRange(min=0), help="Monthly token budget.")
@click.option("--budget-usd", type=click.FloatRange(min=0), help="Monthly budget in USD.")
@click.option("--name", default=None, help="A label for the key (default: the project).")
@_RPM
@_TPM
@_DATA_DIR
def keys_create(
    project: str,
    budget_tokens: int | None,
    budget_usd: float | None,
    name: str | None,
    rpm: int | None,
    tpm: int | None,
    data_dir: Path,
) -> None:
    """Create a key for PROJECT; the key is printed alone on the last line."""
    from millstream.auth import TokenStore
    from millstream.services.llm import KEY_LIMITS_META, Ledger, PriceTable

    if not project or len(project) > 64 or not all(c.isalnum() or c in "._-" for c in project):
        raise click.BadParameter(
            "use 1-64 letters, digits, '.', '_' or '-'", param_hint="--project"
        )

    async def work(store: Store) -> Any:
        ledger = Ledger(store, PriceTable())
        replace = budget_tokens is not None or budget_usd is not None
        record = await ledger.ensure_project(
            project, budget_tokens=budget_tokens, budget_usd=budget_usd, replace_budget=replace
        )
        limits = _limits_meta(rpm, tpm)
        meta = {KEY_LIMITS_META: limits} if limits else None
        new = await TokenStore(store).create(name or project, [f"llm:{project}"], meta=meta)
        return record, new

    record, new = _run(data_dir, work)
    budget = "unlimited" if record.budget_tokens is None else f"{record.budget_tokens:,} tokens"
    if record.budget_usd is not None:
        budget += f", ${record.budget_usd:,.2f}"
    click.echo(f"created key {new.record.id} for project {project} (monthly budget: {budget})")
    click.echo("store it now: it is shown only once")
    click.echo(new.token)


@keys_group.command("list")
@_DATA_DIR
def keys_list(data_dir: Path) -> None:
    """List keys (never their secrets)."""
    rows = [
        (
            record.id,
            record.name,
            " ".join(record.scopes),
            _limits_text(record.meta),
            _when(record.created),
            _when(record.revoked) or "-",
        )
        for record in list_tokens(data_dir)
    ]
    columns = ("id", "name", "scopes", "rate limits", "created", "revoked")
    print_table("API keys", columns, rows)


@keys_group.command("limits")
@click.argument("key")
@_RPM
@_TPM
@click.option("--default", "reset", is_flag=True, help="Drop this key's own limits first.")
@_DATA_DIR
def keys_limits(key: str, rpm: int | None, tpm: int | None, reset: bool, data_dir: Path) -> None:
    """Set KEY's own rate limits (its id, or the whole key); a running server applies them to
    the key's next request."""
    from millstream.auth import AuthError, TokenStore
    from millstream.services.llm import KEY_LIMITS_META

    token_id = _parse_id(key, "KEY")

    async def work(store: Store) -> Any:
        tokens = TokenStore(store)
        current = (
            {} if reset else dict((await tokens.get(token_id)).meta.get(KEY_LIMITS_META) or {})
        )
        limits = {**current, **_limits_meta(rpm, tpm)}
        return await tokens.update_meta(token_id, {KEY_LIMITS_META: limits or None})

    try:
        record = _run(data_dir, work)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key {record.id} ({record.name}): rate limits {_limits_text(record.meta)}")


@keys_group.command("revoke")
@click.argument("key")
@_DATA_DIR
def keys_revoke(key: str, data_dir: Path) -> None:
    """Revoke KEY (its id, or the whole key); it stops working at once."""
    from millstream.auth import AuthError, TokenStore

    token_id = _parse_id(key, "KEY")

    async def work(store: Store) -> Any:
        return await TokenStore(store).revoke(token_id)

    try:
        record = _run(data_dir, work)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked key {record.id} ({record.name})")


@main.command("usage")
@click.option("--project", default=None, help="One project (default: all).")
@click.option(
    "--period", type=click.Choice(["month", "week", "day"]), default="month", show_default=True
)
@_DATA_DIR
def usage_command(project: str | None, period: str, data_dir: Path) -> None:
    """LLM usage by project and model over a period, with budgets."""
    from rich.console import Console
    from rich.table import Table

    from millstream.services.llm import Ledger, PriceTable

    async def work(store: Store) -> list[dict[str, Any]]:
        ledger = Ledger(store, PriceTable())
        names = [project] if project else [name for name, _ in await ledger.projects()]
        return [await ledger.usage(name, period) for name in names]

    reports = _run(data_dir, work)
    console = Console(width=120)
    if not reports:
        console.print("no projects yet (create a key with `millstream keys create --project NAME`)")
        return
    for report in reports:
        table = Table(title=f"{report['project_id']}: usage this {period}")
        for column in (
            "model",
            "requests",
            "input tokens",
            "output tokens",
            "tokens",
            "cost (USD)",
        ):
            table.add_column(column, justify="left" if column == "model" else "right")
        for model, entry in sorted(report["by_model"].items()):
            table.add_row(
                model,
                f"{entry.get('requests', 0):,}",
                f"{entry.get('input_tokens', 0):,}",
                f"{entry.get('output_tokens', 0):,}",
                f"{entry['tokens']:,}",
                f"{entry['cost']:.6f}",
            )
        table.add_row(
            "total", "", "", "", f"{report['total_tokens']:,}", f"{report['total_cost']:.6f}"
        )
        console.print(table)
        if report["limit"] is None:
            console.print("monthly token budget: unlimited")
        else:
            console.print(
                f"monthly token budget: {report['limit']:,}, remaining {report['remaining']:,}"
            )
