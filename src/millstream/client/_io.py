"""The only code that performs I/O: a blocking and an async driver for flows (see ``_core``).

Each driver performs the steps a flow yields and hands out everything else it yields, so a
read (``pump``) and a unary call (``run``) share one loop per twin. One driver serves one flow
(make a new one per call: they are cheap) and owns the streamed responses it opened: at most
one is open at a time (opening the next, after a retry or a reconnect, closes the last), and
whatever is still open when the flow ends or its consumer stops is closed then.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any, TypeVar

import httpx

from millstream._httppool import STREAM_LANE
from millstream.client._core import (
    Call,
    Flow,
    NextPiece,
    Pieces,
    ReadAll,
    Request,
    Result,
    Sleep,
    Step,
    returning,
)

__all__ = ["AsyncIO", "SyncIO"]

T = TypeVar("T")
_END = object()


class _Drive:
    """Where a flow stands: ``next()`` is its next step or delivery, or ``_END``."""

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow
        self.outcome: Any = None

    def next(self) -> Any:
        try:
            return self.flow.send(self.outcome)
        except StopIteration:
            return _END


def _build(
    client: httpx.Client | httpx.AsyncClient,
    step: Request,
    headers: dict[str, str],
    params: dict[str, str],
) -> httpx.Request:
    return client.build_request(
        step.method,
        step.url,
        headers=headers,
        params=params,
        content=step.content,
        timeout=step.timeout,
        extensions=STREAM_LANE if step.long_lived else None,
    )


def _needs_resolving(values: Mapping[str, Any]) -> bool:
    return any(v is None or not isinstance(v, str) for v in values.values())


def _resolve_sync(values: dict[str, Any]) -> dict[str, str]:
    """Header/parameter values for one request: callables called, None left out."""
    if not _needs_resolving(values):
        return values
    out: dict[str, str] = {}
    for key, value in values.items():
        if callable(value):
            value = value()
            if inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # never awaited: say so here, not in a RuntimeWarning later
                raise TypeError(f"{key}: an async function needs the async client (astream)")
        if value is not None:
            out[key] = value
    return out


async def _resolve_async(values: dict[str, Any]) -> dict[str, str]:
    """As ``_resolve_sync``, awaiting what a callable returns when it is awaitable."""
    if not _needs_resolving(values):
        return values
    out: dict[str, str] = {}
    for key, value in values.items():
        if callable(value):
            value = value()
            if inspect.isawaitable(value):
                value = await value
        if value is not None:
            out[key] = value
    return out


class SyncIO:
    """Performs steps with an ``httpx.Client``, blocking."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._open: httpx.Response | None = None

    def _perform(self, step: Step) -> Any:
        try:
            return self._do(step)
        except httpx.TransportError as exc:
            return exc

    def _do(self, step: Step) -> Any:
        if isinstance(step, NextPiece):
            return next(step.pieces, None)
        if isinstance(step, Request):
            self._close()
            request = _build(
                self.client, step, _resolve_sync(step.headers), _resolve_sync(step.params)
            )
            response = self.client.send(request, stream=step.stream)
            self._open = response if step.stream else None
            return response
        if isinstance(step, ReadAll):
            return step.response.read()
        if isinstance(step, Pieces):
            return step.response.iter_bytes()
        if isinstance(step, Sleep):
            return time.sleep(step.seconds)
        assert isinstance(step, Call)
        result = step.function(step.arg)
        if inspect.isawaitable(result):
            raise TypeError(f"{step.name} must be a plain function") from step.arg
        return result

    def _close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def pump(self, flow: Flow[Any]) -> Generator[Any, Any, None]:
        """Run ``flow``, yielding what it hands out; closes it and its response at the end."""
        drive = _Drive(flow)
        try:
            while (step := drive.next()) is not _END:
                if isinstance(step, Step):
                    drive.outcome = self._perform(step)
                else:
                    drive.outcome = yield step
        finally:
            flow.close()
            self._close()

    def run(self, flow: Flow[T]) -> T:
        """Run a unary flow to its result."""
        result: Result = next(self.pump(returning(flow)))
        return result.value  # type: ignore[no-any-return]


class AsyncIO:
    """Performs steps with an ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._open: httpx.Response | None = None

    async def _perform(self, step: Step) -> Any:
        try:
            return await self._do(step)
        except httpx.TransportError as exc:
            return exc

    async def _do(self, step: Step) -> Any:
        if isinstance(step, NextPiece):
            return await anext(step.pieces, None)
        if isinstance(step, Request):
            await self._close()
            headers = await _resolve_async(step.headers)
            params = await _resolve_async(step.params)
            request = _build(self.client, step, headers, params)
            response = await self.client.send(request, stream=step.stream)
            self._open = response if step.stream else None
            return response
        if isinstance(step, ReadAll):
            return await step.response.aread()
        if isinstance(step, Pieces):
            return step.response.aiter_bytes()
        if isinstance(step, Sleep):
            return await asyncio.sleep(step.seconds)
        assert isinstance(step, Call)
        result = step.function(step.arg)
        return await result if inspect.isawaitable(result) else result

    async def _close(self) -> None:
        if self._open is not None:
            await self._open.aclose()
            self._open = None

    async def pump(self, flow: Flow[Any]) -> AsyncGenerator[Any, Any]:
        """Run ``flow``, yielding what it hands out; closes it and its response at the end."""
        drive = _Drive(flow)
        try:
            while (step := drive.next()) is not _END:
                if isinstance(step, Step):
                    drive.outcome = await self._perform(step)
                else:
                    drive.outcome = yield step
        finally:
            flow.close()
            await self._close()

    async def run(self, flow: Flow[T]) -> T:
        """Run a unary flow to its result."""
        pump = self.pump(returning(flow))
        try:
            result: Result = await anext(pump)
        finally:
            await pump.aclose()
        return result.value  # type: ignore[no-any-return]
