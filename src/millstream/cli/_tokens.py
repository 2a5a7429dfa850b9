"""``millstream tokens create | list | revoke``: the tokens both doors and the services accept.

They work on ``serve``'s ``--data-dir``, also while it runs (``_datadir``): a new token works at
once, a revoked one stops within about a second, live readers and Kafka connections included.
``tokens create`` prints the token alone on the last line of standard output
(``| tail -n1``); the store keeps only a hash of it. ``docs/security.md`` explains scopes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import main
from ._datadir import DATA_DIR_OPTION, list_tokens, print_table, run_on_data_dir, token_id, when

if TYPE_CHECKING:
    from millstream.log import Store

__all__ = ["tokens_group"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


@main.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke tokens (HTTP Bearer, Kafka SASL PLAIN/SCRAM, the services)."""


@tokens_group.command("create")
@click.option(
    "--name",
    required=True,
    help="The token's name: its Kafka SASL username, shown in logs (unique among live tokens).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="AREA:TARGET",
    help="What the token may do (repeatable): read:PREFIX, write:PREFIX, admin:PREFIX, "
    "admin: (everything), group:PREFIX (consumer groups), llm:PROJECT, metrics:.",
)
@DATA_DIR_OPTION
def tokens_create(name: str, scopes: tuple[str, ...], data_dir: Path) -> None:
    """Create a token; it is printed alone on the last line, and only this once."""
    from millstream.auth import AuthError, TokenStore, parse_scope

    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS:
        raise click.BadParameter(
            "use 1-128 letters, digits, '.', '_', '@' or '-'", param_hint="--name"
        )
    for scope in scopes:
        try:
            parse_scope(scope)
        except AuthError as exc:
            raise click.BadParameter(f"{exc.message} ({exc.hint})", param_hint="--scope") from exc

    async def work(store: Store) -> Any:
        return await TokenStore(store).create(name, list(scopes), unique_name=True)

    try:
        new = run_on_data_dir(data_dir, work, create=True)
    except AuthError as exc:
        raise click.ClickException(f"{exc.message} ({exc.hint})") from exc
    click.echo(f"created token {new.record.id} named {name} ({' '.join(scopes)})")
    click.echo("store it now: it is shown only once")
    click.echo(new.token)


@tokens_group.command("list")
@DATA_DIR_OPTION
def tokens_list(data_dir: Path) -> None:
    """List tokens (never their secrets), revoked ones included."""
    rows = [
        (r.id, r.name, " ".join(r.scopes), when(r.created), when(r.revoked) or "-")
        for r in list_tokens(data_dir)
    ]
    print_table("tokens", ("id", "name", "scopes", "created", "revoked"), rows)


@tokens_group.command("revoke")
@click.argument("token")
@DATA_DIR_OPTION
def tokens_revoke(token: str, data_dir: Path) -> None:
    """Revoke TOKEN (its id, or the whole token); a running server cuts its live readers and
    Kafka connections within about a second."""
    from millstream.auth import AuthError, TokenStore

    revoking = token_id(token)

    async def work(store: Store) -> Any:
        return await TokenStore(store).revoke(revoking)

    try:
        record = run_on_data_dir(data_dir, work)
    except AuthError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"revoked token {record.id} ({record.name})")
