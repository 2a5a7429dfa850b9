"""The I/O-free half of the LLM client: requests as data, retries and resumable streams as
generator flows (``millstream.client._core``'s ``Step``s), and the mapping of every HTTP answer
to the typed errors. ``_sync``/``_async`` only run the flows.

Retries: network failures, timeouts, 429 rate limits and 5xx are retried up to ``max_retries``
times, waiting ``retry_delay * 2**attempt`` with full jitter (or ``Retry-After`` when the gateway
sends one); budget, authentication and other 4xx errors never are. Every POST carries one
``Idempotency-Key`` for all its attempts, so a retry attaches to the generation the first
attempt started instead of paying for a second one. A stream that breaks reconnects with
``Last-Event-ID`` and continues after the last token it delivered.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Generator, Mapping
from typing import Any

import httpx
import orjson

from millstream.client._core import (
    NextPiece,
    Pieces,
    ReadAll,
    Request,
    Sleep,
    parse_retry_after,
)
from millstream.client._sse import SSEParser, SSEProtocolError

from ._errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ClaudeAPIError,
    GenerationError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from ._models import BatchResponse, BatchResult, Model, Response, Usage, UsageStats
from ._wire import IDEMPOTENCY_KEY_HEADER, LAST_EVENT_ID_HEADER

__all__ = ["ClientCore", "error_from_response"]

Flow = Generator[Any, Any, Any]
MAX_BACKOFF = 30.0
#: Extra seconds the HTTP timeout allows beyond the generation's own timeout.
TIMEOUT_MARGIN = 5.0


def _detail(body: bytes) -> tuple[str, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip(), None
    if not isinstance(data, dict):
        return str(data), None
    error = data.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    detail = data.get("detail")
    if not isinstance(detail, str):
        detail = error.get("message") if isinstance(error, dict) else None
    return str(detail or data), kind


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ClaudeAPIError:
    """The typed error for an HTTP error answer (the seed's rules, and the rest)."""
    detail, kind = _detail(body)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status in (401, 403):
        return AuthenticationError(detail or "Authentication failed", status=status, type=kind)
    if status == 429:
        if "Budget exceeded" in detail or kind == "budget_exceeded":
            return BudgetExceededError(detail, status=status, type=kind)
        return RateLimitError(
            detail or "Rate limit exceeded", status=status, type=kind, retry_after=retry_after
        )
    if status in (408, 504) or kind == "timeout":
        return TimeoutError(detail or "Request timed out", status=status, type=kind)
    if status >= 500:
        return ServerError(detail or f"HTTP {status}", status=status, type=kind)
    return BadRequestError(detail or f"HTTP {status}", status=status, type=kind)


def _transport_error(exc: BaseException, url: str) -> ClaudeAPIError:
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"Request timed out: {type(exc).__name__} talking to {url}")
    return APIConnectionError(f"Request failed: {type(exc).__name__}: {exc} ({url})")


def _model_name(model: str | Model) -> str:
    return model.value if isinstance(model, Model) else str(model)


def _usage(value: Any) -> Usage:
    return Usage.from_json(value)


class ClientCore:
    """Settings and every decision the twins share (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        project_id: str,
        timeout: float,
        max_retries: int,
        retry_delay: float,
    ) -> None:
        if max_retries < 0 or retry_delay < 0 or timeout <= 0:
            raise ValueError("timeout must be positive; max_retries and retry_delay >= 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.project_id = project_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_delay = retry_delay

    def client_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return float(min(retry_after, 60.0))
        base = float(min(self.retry_delay * 2**attempt, MAX_BACKOFF))
        return base / 2 + random.uniform(0, base / 2)

    def _http_timeout(self, timeout: float | None) -> httpx.Timeout:
        return httpx.Timeout((timeout or self.timeout) + TIMEOUT_MARGIN, connect=10.0)

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Request:
        all_headers = dict(headers or {})
        content = None
        if body is not None:
            content = orjson.dumps(body)
            all_headers["content-type"] = "application/json"
        return Request(
            method,
            self.base_url + path,
            headers=all_headers,
            params=params or {},
            content=content,
            timeout=self._http_timeout(timeout),
            stream=stream,
            long_lived=stream,  # streamed output holds its connection: the stream lane
        )

    # -- flows ----------------------------------------------------------------------------

    def call(self, request: Request) -> Flow:
        """Perform ``request`` with retries; return the successful ``httpx.Response``."""
        attempt = 0
        while True:
            outcome = yield request
            if isinstance(outcome, httpx.Response):
                if outcome.status_code < 400:
                    return outcome
                error = error_from_response(outcome.status_code, outcome.headers, outcome.content)
                retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            else:
                error = _transport_error(outcome, request.url)
                retry_after = None
            if not error.retryable or attempt >= self.max_retries:
                raise error
            yield Sleep(self.backoff(attempt, retry_after))
            attempt += 1

    def chat_body(
        self, prompt: str, model: str | Model, project_id: str | None, timeout: float | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": prompt}],
            "project_id": project_id or self.project_id,
        }
        name = _model_name(model)
        if name != "auto":
            body["model"] = name
        if timeout:
            body["timeout"] = timeout
        return body

    def complete_flow(
        self, prompt: str, model: str | Model, project_id: str | None, timeout: float | None
    ) -> Flow:
        body = self.chat_body(prompt, model, project_id, timeout)
        request = self._request(
            "POST",
            "/v1/chat/completions",
            body=body,
            timeout=timeout,
            headers={IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())},
        )
        response = yield from self.call(request)
        data = _json(response)
        return Response(
            id=data["id"],
            model=data["model"],
            content=data["content"],
            usage=_usage(data["usage"]),
            cost=data["cost"],
            project_id=data["project_id"],
        )

    def stream_flow(self, prompt: str, model: str | Model, project_id: str | None) -> Flow:
        """Yields each token's text as it arrives; resumes after a dropped connection."""
        body = self.chat_body(prompt, model, project_id, None)
        body["stream"] = True
        key = str(uuid.uuid4())
        last_id: str | None = None
        attempt = 0
        while True:
            headers = {IDEMPOTENCY_KEY_HEADER: key, "accept": "text/event-stream"}
            if last_id is not None:
                headers[LAST_EVENT_ID_HEADER] = last_id
            request = self._request(
                "POST", "/v1/chat/completions", body=body, stream=True, headers=headers
            )
            outcome = yield request
            failure: ClaudeAPIError
            retry_after = None
            if isinstance(outcome, httpx.Response):
                if outcome.status_code >= 400:
                    content = yield ReadAll(outcome)
                    if isinstance(content, BaseException):
                        content = b""
                    failure = error_from_response(outcome.status_code, outcome.headers, content)
                    retry_after = parse_retry_after(outcome.headers.get("retry-after"))
                else:
                    progressed, done, failure_or_none, last_id = yield from self._read_events(
                        outcome, last_id, request.url
                    )
                    if done:
                        return None
                    if progressed:
                        attempt = 0  # a connection that delivered resets the retry budget
                    assert failure_or_none is not None
                    failure = failure_or_none
            else:
                failure = _transport_error(outcome, request.url)
            if not failure.retryable or attempt >= self.max_retries:
                raise failure
            yield Sleep(self.backoff(attempt, retry_after))
            attempt += 1

    def _read_events(
        self, response: httpx.Response, last_id: str | None, url: str
    ) -> Generator[Any, Any, tuple[bool, bool, ClaudeAPIError | None, str | None]]:
        """Deliver tokens until ``[DONE]`` or the connection ends:
        ``(progressed, done, failure, last event id)``."""
        parser = SSEParser()
        pieces = yield Pieces(response)
        progressed = False
        while True:
            chunk = yield NextPiece(pieces)
            if isinstance(chunk, BaseException):
                return progressed, False, _transport_error(chunk, url), last_id
            if chunk is None:
                return (
                    progressed,
                    False,
                    APIConnectionError("the stream ended before [DONE]"),
                    last_id,
                )
            try:
                events = parser.feed(chunk)
            except SSEProtocolError as exc:
                raise ServerError(f"malformed event stream: {exc}") from exc
            for event in events:
                if event.data.strip() == "[DONE]":
                    return progressed, True, None, last_id
                try:
                    data = orjson.loads(event.data)
                except orjson.JSONDecodeError as exc:
                    raise ServerError(f"malformed event: {event.data[:200]!r}") from exc
                if "error" in data:
                    error = data["error"] or {}
                    message = str(error.get("message", "the generation failed"))
                    raise GenerationError(message, type=str(error.get("type", "")))
                if event.id:
                    last_id = event.id
                for choice in data.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        progressed = True
                        yield text

    def batch_flow(
        self,
        prompts: list[str],
        model: str | Model,
        project_id: str | None,
        parallel: bool,
        timeout: float | None,
    ) -> Flow:
        body: dict[str, Any] = {
            "prompts": [{"prompt": p, "id": str(i)} for i, p in enumerate(prompts)],
            "project_id": project_id or self.project_id,
        }
        name = _model_name(model)
        if name != "auto":
            body["model"] = name
        if timeout:
            body["timeout"] = timeout
        # The whole batch may take several rounds of the gateway's worker pool.
        budget = (timeout or self.timeout) * max(1, len(prompts))
        request = self._request(
            "POST",
            "/v1/batch",
            body=body,
            timeout=budget,
            headers={IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())},
        )
        response = yield from self.call(request)
        data = _json(response)
        return BatchResponse(
            total=data["total"],
            completed=data["completed"],
            failed=data["failed"],
            results=[
                BatchResult(
                    id=item["id"],
                    prompt=item["prompt"],
                    status=item["status"],
                    content=item.get("content"),
                    usage=_usage(item["usage"]) if item.get("usage") else None,
                    cost=item.get("cost"),
                    error=item.get("error"),
                )
                for item in data["results"]
            ],
            total_cost=data["total_cost"],
            total_tokens=data["total_tokens"],
        )

    def usage_flow(self, period: str, project_id: str | None) -> Flow:
        request = self._request(
            "GET",
            "/v1/usage",
            params={"project_id": project_id or self.project_id, "period": period},
        )
        response = yield from self.call(request)
        data = _json(response)
        return UsageStats(
            project_id=data["project_id"],
            period=data["period"],
            total_tokens=data["total_tokens"],
            total_cost=data["total_cost"],
            by_model=data["by_model"],
            limit=data.get("limit"),
            remaining=data.get("remaining"),
        )

    def health_flow(self) -> Flow:
        response = yield from self.call(self._request("GET", "/health"))
        return _json(response)


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ServerError(f"the gateway answered something that is not JSON: {exc}") from exc
