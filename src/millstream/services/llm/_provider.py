"""What every provider adapter offers the gateway: one generation as a stream of events, with
bounded retries before the first token and typed errors after.

An adapter turns a ``ProviderRequest`` into the provider's wire format and yields ``TextDelta``
events then one ``Finished``. ``HttpProvider`` holds what the HTTP adapters share: a pooled
aiohttp session, the retry loop (429, 529/overload, 5xx, connection failures and stalls are
retried with exponential backoff and full jitter, honouring ``Retry-After`` up to a cap; other
4xx never are) and the translation of aiohttp errors into ``ProviderError``. Once a token has
been yielded a failure is final: repeating the call would bill and say it twice.

Why aiohttp and not httpx (the SDKs' client): every millisecond of this hop is latency the
gateway adds, and on the benchmark machine a request through httpx took 2-6 ms longer than the
same request through aiohttp (p50, keep-alive, same server; httpx writes headers and body
separately and goes through more layers per request), measured with
``benchmarks/llm_gateway.py``'s fake provider (docs/llm.md, Performance).
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from millstream.client._core import parse_retry_after
from millstream.client._sse import SSEEvent, SSEParser, SSEProtocolError

__all__ = [
    "Finished",
    "HttpProvider",
    "Provider",
    "ProviderError",
    "ProviderEvent",
    "ProviderRequest",
    "RetrySettings",
    "TextDelta",
]


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One generation as the gateway asks for it (``model`` is the provider's model id)."""

    model: str
    messages: list[dict[str, str]]  # role "user"/"assistant"; system prompts in ``system``
    max_tokens: int
    stream: bool
    system: str | None = None
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The provider's end of a generation; token counts as it reported them (``None``: not
    reported, the gateway estimates)."""

    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None


ProviderEvent = TextDelta | Finished


class ProviderError(Exception):
    """A provider call that failed for good. ``kind``: ``rate_limited``, ``overloaded``,
    ``server``, ``bad_request``, ``auth``, ``connection``, ``timeout`` or ``protocol``."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "overloaded", "server", "connection", "timeout")


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Upstream retries: at most ``max_retries`` after the first try, ``initial_delay`` doubling
    up to ``max_delay`` with full jitter; a ``Retry-After`` is honoured up to ``max_delay``."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return random.uniform(0, min(self.initial_delay * 2**attempt, self.max_delay))


class Provider(abc.ABC):
    """A source of generations (Anthropic, an OpenAI-compatible API, the offline model)."""

    #: ``anthropic``, ``openai`` or ``offline``.
    name: str = "provider"

    @abc.abstractmethod
    def generate(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Text deltas as they arrive, then one ``Finished``; raises ``ProviderError``."""

    def describe(self) -> dict[str, Any]:
        """What ``/health`` shows for this provider."""
        return {"status": "configured"}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _retryable_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _kind(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status == 529:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status >= 500 or status in (408, 409):
        return "server"
    return "bad_request"


class HttpProvider(Provider):
    """An adapter that speaks JSON over HTTP with SSE streams (see the module docstring): it
    posts to ``base_url`` (``default_base_url`` if None) followed by ``path``."""

    default_base_url: str = ""
    path: str = ""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        retry: RetrySettings | None = None,
        stall_timeout: float = 60.0,
        max_connections: int = 4096,
    ) -> None:
        self.url = (base_url or self.default_base_url).rstrip("/") + self.path
        self.retry = retry or RetrySettings()
        self._headers = self.auth_headers(api_key)
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10.0, sock_read=stall_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made on the event loop, when used
        self.last_error: str | None = None

    @abc.abstractmethod
    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Authentication and version headers."""

    @abc.abstractmethod
    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The provider's request body."""

    @abc.abstractmethod
    def parse_complete(self, data: Any) -> list[ProviderEvent]:
        """Events of a non-streamed answer."""

    @abc.abstractmethod
    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""

    def describe(self) -> dict[str, Any]:
        status = "degraded" if self.last_error else "configured"
        out: dict[str, Any] = {"status": status, "url": self.url}
        if self.last_error:
            out["last_error"] = self.last_error
        return out

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def generate(self, request: ProviderRequest) -> AsyncGenerator[ProviderEvent, None]:
        payload = orjson.dumps(self.body(request))
        headers = {**self._headers, "content-type": "application/json"}
        attempt = 0
        while True:
            emitted = False
            try:
                async for event in self._attempt(request.stream, payload, headers):
                    emitted = True
                    yield event
                self.last_error = None
                return
            except ProviderError as exc:
                self.last_error = f"{exc.kind}: {exc.message}"
                if emitted or not exc.retryable or attempt >= self.retry.max_retries:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, exc.retry_after))
                attempt += 1

    async def _attempt(
        self, stream: bool, payload: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[ProviderEvent]:
        try:
            response = await self._client().post(self.url, data=payload, headers=headers)
        except TimeoutError as exc:
            raise ProviderError(f"{self.name} timed out: {exc!r}", kind="timeout") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self.name} unreachable: {exc!r}", kind="connection") from exc
        try:
            if response.status >= 400:
                body = await self._read(response)
                raise self._status_error(response, body)
            if not stream:
                data = orjson.loads(await self._read(response))
                for event in self.parse_complete(data):
                    yield event
                return
            decoder = self.stream_decoder()
            parser = SSEParser(max_event_bytes=8 << 20)
            finished = False
            async for chunk in self._chunks(response):
                for sse in parser.feed(chunk):
                    for event in decoder.decode(sse):
                        if isinstance(event, Finished):
                            finished = True
                        yield event
            if not finished:
                end = decoder.finish()
                if end is None:
                    raise ProviderError(
                        f"{self.name} ended the stream before its final event", kind="protocol"
                    )
                yield end
        except (orjson.JSONDecodeError, SSEProtocolError, KeyError, TypeError, ValueError) as exc:
            raise ProviderError(
                f"{self.name} sent a malformed answer: {exc}", kind="protocol"
            ) from exc
        finally:
            response.release()

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except TimeoutError as exc:
            raise ProviderError(f"{self.name} stalled: {exc!r}", kind="timeout") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                f"{self.name} dropped the answer: {exc!r}", kind="connection"
            ) from exc

    async def _chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        content = response.content
        while True:
            try:
                chunk = await content.readany()
            except TimeoutError as exc:
                raise ProviderError(f"{self.name} stalled mid-stream", kind="timeout") from exc
            except aiohttp.ClientError as exc:
                raise ProviderError(
                    f"{self.name} cut the stream: {exc!r}", kind="connection"
                ) from exc
            if not chunk:
                return
            yield chunk

    def _status_error(self, response: aiohttp.ClientResponse, body: bytes) -> ProviderError:
        status = response.status
        message = body[:500].decode("utf-8", "replace")
        try:
            data = orjson.loads(body)
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict) and error.get("message"):
                message = str(error["message"])
        except orjson.JSONDecodeError:
            pass
        kind = _kind(status)
        if not _retryable_status(status) and kind == "server":
            kind = "bad_request"
        return ProviderError(
            f"{self.name} answered {status}: {message}",
            kind=kind,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )


class StreamDecoder(abc.ABC):
    """Turns one provider's SSE events into ``ProviderEvent``s (sans-IO)."""

    @abc.abstractmethod
    def decode(self, event: SSEEvent) -> list[ProviderEvent]: ...

    def finish(self) -> Finished | None:
        """At end of body without a final event: a ``Finished`` if the stream may end so."""
        return None
