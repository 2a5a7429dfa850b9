"""``AsyncClaudeClient``: the async twin of ``ClaudeClient``, same names and behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from millstream._httppool import async_client
from millstream.client._io import AsyncIO

from ._core import ClientCore
from ._models import BatchResponse, Model, Response, UsageStats

__all__ = ["AsyncClaudeClient"]


class AsyncClaudeClient:
    """Async client of the millstream LLM gateway (``async with`` closes it)."""

    def __init__(
        self,
        base_url: str = "http://localhost:8080",
        api_key: str | None = None,
        project_id: str = "default",
        timeout: float = 30.0,
        max_retries: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        self._core = ClientCore(base_url, api_key, project_id, timeout, max_retries, retry_delay)
        self.base_url = self._core.base_url
        self.api_key = api_key
        self.project_id = project_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        # httpx's pool slows down with many requests queued on one client (a parallel batch,
        # many streams): the queued transport keeps it fast (millstream._httppool).
        self.client = async_client(headers=self._core.client_headers(), timeout=timeout)

    async def __aenter__(self) -> AsyncClaudeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (the seed's name; ``aclose`` is the same)."""
        await self.client.aclose()

    aclose = close

    async def complete(
        self,
        prompt: str,
        model: str | Model = Model.AUTO,
        project_id: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        result: Response = await AsyncIO(self.client).run(
            self._core.complete_flow(prompt, model, project_id, timeout)
        )
        return result

    async def stream(
        self, prompt: str, model: str | Model = Model.AUTO, project_id: str | None = None
    ) -> AsyncIterator[str]:
        """``async for token in client.stream(...)``: tokens as they arrive, resumed after a
        dropped connection."""
        pump = AsyncIO(self.client).pump(self._core.stream_flow(prompt, model, project_id))
        try:
            async for token in pump:
                yield token
        finally:
            await pump.aclose()

    async def batch(
        self,
        prompts: list[str],
        model: str | Model = Model.AUTO,
        project_id: str | None = None,
        parallel: bool = True,
        timeout: float | None = None,
    ) -> BatchResponse:
        result: BatchResponse = await AsyncIO(self.client).run(
            self._core.batch_flow(prompts, model, project_id, parallel, timeout)
        )
        return result

    async def get_usage(self, period: str = "month", project_id: str | None = None) -> UsageStats:
        result: UsageStats = await AsyncIO(self.client).run(
            self._core.usage_flow(period, project_id)
        )
        return result

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await AsyncIO(self.client).run(self._core.health_flow())
        return result
