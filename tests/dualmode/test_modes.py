"""Mode detection: the priority rule as a table, and the FastAPI dependency over real HTTP."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from millstream.dualmode import (
    InvalidModeError,
    ModeDetector,
    ResponseMode,
    detect_mode,
    detect_response_mode,
    negotiate_mode,
)
from millstream.dualmode._modes import accepts_event_stream, choose_mode

from .conftest import serving

B, S = ResponseMode.BATCH, ResponseMode.STREAM

# (?stream=, ?format=, Accept) -> mode
RULES = [
    (None, None, "", B),
    (None, None, "*/*", B),
    (None, None, "application/json", B),
    (None, None, "text/event-stream", S),
    (None, None, "Text/Event-Stream", S),
    (None, None, "application/json, text/event-stream;q=0.5", S),
    (None, None, "text/event-stream;q=0", B),
    (None, None, "text/event-stream; q=0.0, */*", B),
    (None, None, "text/event-streams", B),
    ("true", None, "", S),
    ("1", None, "", S),
    ("yes", None, "", S),
    ("false", None, "text/event-stream", B),
    ("0", "stream", "text/event-stream", B),
    (None, "stream", "", S),
    (None, "batch", "text/event-stream", B),
    (None, "auto", "text/event-stream", S),
    (None, "auto", "", B),
    (None, "STREAM", "", S),
]


@pytest.mark.parametrize(("stream", "format", "accept", "mode"), RULES)
def test_priority(stream: str | None, format: str | None, accept: str, mode: ResponseMode) -> None:
    assert choose_mode(stream, format, accept, ResponseMode.BATCH) is mode


@pytest.mark.parametrize(("stream", "format"), [("maybe", None), ("", None), (None, "sse")])
def test_unknown_values_are_refused(stream: str | None, format: str | None) -> None:
    with pytest.raises(InvalidModeError) as info:
        choose_mode(stream, format, "", ResponseMode.BATCH)
    assert info.value.status == 400


def test_accept_parsing_ignores_bad_quality() -> None:
    assert not accepts_event_stream("text/event-stream;q=abc")
    assert accepts_event_stream("text/html, text/event-stream ; charset=utf-8")


def _request(query: str = "", **headers: str) -> Request:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "query_string": query.encode(), "headers": raw})


def test_detect_mode_reads_accept_only() -> None:
    assert detect_mode(_request(accept="text/event-stream")) is S
    assert detect_mode(_request("stream=true")) is B
    assert detect_response_mode is detect_mode


def test_mode_detector_headers_and_default() -> None:
    detector = ModeDetector(
        default_mode=ResponseMode.STREAM,
        stream_headers={"X-Stream": "yes"},
        batch_headers={"Accept": "application/json"},
    )
    assert detector.detect(_request()) is S
    assert detector(_request(x_stream="YES please")) is S
    assert detector(_request(accept="application/json")) is B
    assert detector(_request("stream=false", x_stream="yes")) is B
    assert detector(_request("format=auto", accept="application/json")) is B
    plain = ModeDetector()
    assert plain(_request(accept="text/event-stream")) is S
    assert plain(_request(accept="text/event-stream;q=0")) is B
    assert plain(_request()) is B


async def test_negotiate_mode_as_a_dependency() -> None:
    app = FastAPI()

    @app.get("/mode")
    async def mode(chosen: Annotated[ResponseMode, Depends(negotiate_mode)]) -> str:
        return chosen.value

    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/mode")).json() == "batch"
        assert (await client.get("/mode?stream=true")).json() == "stream"
        assert (await client.get("/mode?format=stream")).json() == "stream"
        sse = {"accept": "text/event-stream"}
        assert (await client.get("/mode?format=auto", headers=sse)).json() == "stream"
        assert (await client.get("/mode?stream=false", headers=sse)).json() == "batch"
        assert (await client.get("/mode?format=nope")).status_code == 422
        spec = (await client.get("/openapi.json")).json()
        names = {p["name"] for p in spec["paths"]["/mode"]["get"]["parameters"]}
        assert names == {"stream", "format"}
