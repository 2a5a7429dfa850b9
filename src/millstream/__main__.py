"""``python -m millstream`` runs the CLI."""

from millstream.cli import main

main()
