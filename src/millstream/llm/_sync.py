"""``ClaudeClient``: the blocking twin; every decision is in ``_core``."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

from millstream._httppool import sync_client
from millstream.client._io import SyncIO

from ._core import ClientCore
from ._models import BatchResponse, Model, Response, UsageStats

__all__ = ["ClaudeClient"]


class ClaudeClient:
    """Client of the millstream LLM gateway (the seed's API; ``with`` closes it).

    >>> client = ClaudeClient(base_url="http://127.0.0.1:4437", api_key="ms_...")
    """

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
        self.client = sync_client(headers=self._core.client_headers(), timeout=timeout)

    def __enter__(self) -> ClaudeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def complete(
        self,
        prompt: str,
        model: str | Model = Model.AUTO,
        project_id: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One completion of ``prompt``; ``model`` ``auto`` lets the gateway choose."""
        result: Response = SyncIO(self.client).run(
            self._core.complete_flow(prompt, model, project_id, timeout)
        )
        return result

    def stream(
        self, prompt: str, model: str | Model = Model.AUTO, project_id: str | None = None
    ) -> Iterator[str]:
        """The completion's text token by token as the provider writes it; a dropped
        connection resumes after the last token delivered (each token exactly once)."""
        yield from SyncIO(self.client).pump(self._core.stream_flow(prompt, model, project_id))

    def batch(
        self,
        prompts: list[str],
        model: str | Model = Model.AUTO,
        project_id: str | None = None,
        parallel: bool = True,
        timeout: float | None = None,
    ) -> BatchResponse:
        """Complete every prompt (the gateway runs them in a bounded worker pool)."""
        result: BatchResponse = SyncIO(self.client).run(
            self._core.batch_flow(prompts, model, project_id, parallel, timeout)
        )
        return result

    def get_usage(self, period: str = "month", project_id: str | None = None) -> UsageStats:
        """The project's tokens and cost over ``month``, ``week`` or ``day``, and its budget."""
        result: UsageStats = SyncIO(self.client).run(self._core.usage_flow(period, project_id))
        return result

    def health(self) -> dict[str, Any]:
        """The gateway's ``GET /health`` (per-provider status under ``services.llm``)."""
        result: dict[str, Any] = SyncIO(self.client).run(self._core.health_flow())
        return result
