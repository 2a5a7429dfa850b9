"""Client commands: ``millstream create | append | read | tail | head | rm``.

STREAM is a full URL (any Durable Streams server) or a bare name, which means
``$MILLSTREAM_URL/v1/stream/NAME`` (default ``http://127.0.0.1:4437``, the local server).
Errors print as one line on stderr, with the hint, and exit 1.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson

from millstream.cli import main
from millstream.client import DurableStream, DurableStreamError, stream

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BASE = "http://127.0.0.1:4437"


def stream_url(target: str) -> str:
    if "://" in target:
        return target
    base = os.environ.get("MILLSTREAM_URL", DEFAULT_BASE).rstrip("/")
    return f"{base}/v1/stream/{target.lstrip('/')}"


def one_line_errors(func: F) -> F:
    """Turn client errors into one clear line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DurableStreamError as exc:
            message = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
            click.echo(f"error: {message}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _print_item(item: Any, pretty: bool) -> None:
    if pretty:
        click.echo(json.dumps(item, indent=2, ensure_ascii=False))
    else:
        click.echo(orjson.dumps(item).decode())


@main.command()
@click.argument("target", metavar="STREAM")
@click.option("--content-type", "-t", default="application/json", show_default=True)
@click.option("--ttl", type=int, help="Sliding time-to-live in seconds.")
@click.option("--expires-at", help="Absolute expiry (RFC 3339).")
@one_line_errors
def create(target: str, content_type: str, ttl: int | None, expires_at: str | None) -> None:
    """Create a stream (succeeds if it exists with the same settings)."""
    url = stream_url(target)
    with DurableStream.create(
        url, content_type=content_type, ttl_seconds=ttl, expires_at=expires_at
    ) as handle:
        click.echo(f"created {handle.url} ({handle.content_type})")


@main.command()
@click.argument("target", metavar="STREAM")
@click.argument("data", required=False)
@click.option("--lines", is_flag=True, help="Each line of stdin is one message.")
@one_line_errors
def append(target: str, data: str | None, lines: bool) -> None:
    """Append DATA, or stdin when DATA is absent. On JSON streams each message is parsed as
    JSON when it is valid JSON, otherwise sent as a JSON string."""
    with DurableStream(stream_url(target)) as handle:
        if data is not None:
            messages = [data]
        elif lines:
            messages = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
        else:
            messages = [sys.stdin.read()]
        result = None
        handle.head()  # learn the content type once, and fail early if missing
        json_stream = handle.content_type is not None and handle.content_type.startswith(
            "application/json"
        )
        for message in messages:
            value: Any = message
            if json_stream:
                # A str on a JSON stream is JSON text: valid JSON goes as it is, anything
                # else as a JSON string.
                try:
                    orjson.loads(message)
                except orjson.JSONDecodeError:
                    value = orjson.dumps(message)
            elif lines:
                value = message + "\n"
            result = handle.append(value)
        if result is not None:
            click.echo(f"appended {len(messages)} message(s); next offset {result.next_offset}")


def _read(target: str, offset: str | None, live: Any, pretty: bool) -> None:
    url = stream_url(target)
    with DurableStream(url) as handle:
        # Ask once: a live read's first answer may be a 204 that carries no content type.
        content_type = handle.head().content_type or ""
    with stream(url, offset=offset, live=live) as res:
        if live:
            # On stderr, so piped output stays data only; it also says when following began.
            click.echo(f"following {url} from {res.offset} (Ctrl-C stops)", err=True)
        if content_type.startswith("application/json"):
            for item in res.iter_json():
                _print_item(item, pretty)
        else:
            for text in res.iter_text():
                click.echo(text, nl=False)
            sys.stdout.flush()


@main.command()
@click.argument("target", metavar="STREAM")
@click.option("--from", "offset", default=None, help="Start offset (default: the beginning).")
@click.option("--pretty", is_flag=True, help="Indent JSON messages.")
@one_line_errors
def read(target: str, offset: str | None, pretty: bool) -> None:
    """Print the stream from an offset up to its current end (JSON: one message per line)."""
    _read(target, offset, False, pretty)


@main.command()
@click.argument("target", metavar="STREAM")
@click.option("--from", "offset", default="now", show_default=True, help="Start offset.")
@click.option("--sse", is_flag=True, help="Follow with Server-Sent Events, not long-poll.")
@one_line_errors
def tail(target: str, offset: str, sse: bool) -> None:
    """Follow the stream live and pretty-print JSON messages until it closes (Ctrl-C stops)."""
    _read(target, offset, "sse" if sse else "long-poll", True)


@main.command()
@click.argument("target", metavar="STREAM")
@one_line_errors
def head(target: str) -> None:
    """Show the stream's metadata."""
    with DurableStream(stream_url(target)) as handle:
        result = handle.head()
    click.echo(f"url:          {handle.url}")
    click.echo(f"content-type: {result.content_type}")
    click.echo(f"next offset:  {result.offset}")
    click.echo(f"closed:       {'yes' if result.closed else 'no'}")
    if result.ttl_seconds is not None:
        click.echo(f"ttl:          {result.ttl_seconds}s")
    if result.expires_at:
        click.echo(f"expires at:   {result.expires_at}")


@main.command()
@click.argument("target", metavar="STREAM")
@one_line_errors
def rm(target: str) -> None:
    """Delete the stream and its data."""
    with DurableStream(stream_url(target)) as handle:
        handle.delete()
    click.echo(f"deleted {handle.url}")
