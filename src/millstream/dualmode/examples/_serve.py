"""Running an example app, and checking a server against an exercise, from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import httpx
import uvicorn
from starlette.types import ASGIApp

from millstream.client import SSEEvent, SSEParser

__all__ = ["ExerciseFailed", "check_main", "serve", "sse_events"]


def serve(app: ASGIApp, argv: Sequence[str] | None = None, *, description: str = "") -> None:
    """``--host``/``--port`` (0: any free port; uvicorn's startup line shows which), then run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")


class ExerciseFailed(AssertionError):
    """The server does not do what the exercise asks."""


def sse_events(response: httpx.Response) -> list[SSEEvent]:
    """The events of a complete SSE answer, parsed by millstream's own parser."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/event-stream"):
        raise ExerciseFailed(f"expected text/event-stream, got {content_type!r}")
    parser = SSEParser()
    return [*parser.feed(response.content), *parser.flush()]


def check_main(check: Callable[[httpx.Client], None], argv: Sequence[str] | None = None) -> int:
    """``python -m ...exercise URL``: run ``check`` against the server at URL."""
    parser = argparse.ArgumentParser(description="Check a server against this exercise.")
    parser.add_argument("url", help="base URL of your server, e.g. http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    with httpx.Client(base_url=args.url, timeout=30) as client:
        try:
            check(client)
        except ExerciseFailed as exc:
            print(f"not yet: {exc}")
            return 1
    print("passed")
    return 0


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ExerciseFailed(message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run an example module instead: see millstream.dualmode.examples")
