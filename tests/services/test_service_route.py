"""``Route.matches``: exact paths and path trees, never a mere string prefix."""

from __future__ import annotations

import pytest

from millstream.server.http._types import Receive, Scope, Send
from millstream.services import Route


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("/v1/chat/completions", "/v1/chat/completions", True),
        ("/v1/chat/completions", "/v1/chat/completions/x", True),
        ("/v1/chat/completions", "/v1/chat/completionsx", False),
        ("/api/v1", "/api/v1/anomalies", True),
        ("/api/v1", "/api/v10", False),
        ("/api/v1", "/api", False),
    ],
)
def test_route_matches_exact_paths_and_trees(prefix: str, path: str, expected: bool) -> None:
    assert Route(prefix, _app).matches(path) is expected
