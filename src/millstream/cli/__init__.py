"""The ``millstream`` command: ``serve`` runs the server; the rest are Durable Streams client
commands usable against any server. Each command lives in its own module and registers here."""

from __future__ import annotations

import click

from millstream import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="millstream")
def main() -> None:
    """millstream: one durable log with two front doors (Durable Streams over HTTP, Kafka)."""


# Each command module registers itself on ``main`` when imported.
from . import (  # noqa: E402
    _client_commands,  # noqa: F401  (create/append/read/tail/head/rm)
    _keys,  # noqa: F401  (keys create/list/revoke, usage)
    _serve,  # noqa: F401  (serve)
    _tokens,  # noqa: F401  (tokens create/list/revoke)
)
