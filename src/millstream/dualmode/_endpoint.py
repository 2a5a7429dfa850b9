"""``@dual_mode``: an async generator function becomes a FastAPI endpoint that answers JSON or
Server-Sent Events, and with ``durable=True`` resumes streams from the log.

The decorated function keeps its parameters (FastAPI reads them from the signature, so query,
path, body and dependency parameters work as usual); the wrapper adds a ``Request`` parameter
when the function has none, picks the mode, and returns a ``DualModeResponse`` (or, durable, a
``DurableResponse``). The wrapper deliberately has no ``__wrapped__``: FastAPI follows it, sees
an async generator and would stream the items as JSON lines itself.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, Protocol, overload

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from ._backpressure import Backpressure, StreamStatistics
from ._batch import BatchBuilder
from ._durable import DurableResponse, Generations
from ._errors import DualModeError, IdempotencyKeyError
from ._events import raw_headers
from ._log import GenerationLog, RemoteLog, StoreLog
from ._modes import ModeDetector, ResponseMode
from ._response import DualModeResponse
from ._settings import StreamSettings
from ._sse import to_json

if typing.TYPE_CHECKING:
    from millstream.log import Store

__all__ = ["DualMode", "DualModeEndpoint", "dual_mode"]

GeneratorFunction = Callable[..., AsyncIterator[Any]]
KeyOption = str | Callable[[Request], str | None] | None

_KEY = re.compile(r"\A[A-Za-z0-9._~:-]{1,200}\Z")
_REQUEST = "dualmode_request"
DEFAULT_TTL = 24 * 3600


class DualModeEndpoint(Protocol):
    """What ``@dual_mode`` returns: the endpoint function, with ``.dualmode`` attached."""

    dualmode: DualMode
    __name__: str

    def __call__(self, **kwargs: Any) -> Coroutine[Any, Any, Response]: ...


class DualMode:
    """One dual-mode endpoint: its settings, counters and (durable) generations.

    Reached as ``endpoint.dualmode``: ``statistics()`` for the counters, ``aclose()`` to cancel
    durable generations still running (call it before closing their store).
    """

    def __init__(
        self,
        func: GeneratorFunction,
        *,
        durable: bool,
        store: Store | None,
        url: str | None,
        path: str | None,
        key: KeyOption,
        ttl: int | None,
        batch: BatchBuilder | None,
        detector: Callable[[Request], ResponseMode] | None,
        settings: StreamSettings,
        headers: Mapping[str, str] | None,
    ) -> None:
        if not inspect.isasyncgenfunction(func):
            raise TypeError(f"@dual_mode needs an async generator function, not {func!r}")
        self.func = func
        self.settings = settings
        self.batch = batch
        self.detector = detector or ModeDetector()
        self.headers = dict(headers or {})
        self.key = key
        self._statistics = StreamStatistics()
        self.generations: Generations | None = None
        if durable:
            log = _durable_log(func, store, url, path, ttl)
            self.generations = Generations(log, settings, self._statistics)
        elif store is not None or url is not None:
            raise ValueError("store= and url= are where durable mode writes: add durable=True")
        if isinstance(key, str) and key not in inspect.signature(func).parameters:
            raise ValueError(f"key={key!r} is not a parameter of {func.__name__}")

    def statistics(self) -> StreamStatistics:
        """A copy of the endpoint's counters (see ``StreamStatistics``)."""
        return replace(self._statistics)

    async def aclose(self) -> None:
        """Cancel the durable generations running in this process (each logs a failed end)."""
        if self.generations is not None:
            await self.generations.aclose()

    async def respond(self, request: Request, arguments: dict[str, Any]) -> Response:
        """The answer to one call of the endpoint with ``arguments``."""
        try:
            mode = self.detector(request)
            if self.generations is None:
                return DualModeResponse(
                    self.func(**arguments),
                    mode,
                    batch=self.batch,
                    settings=self.settings,
                    headers=self.headers,
                    statistics=self._statistics,
                )
            return self._durable(request, arguments, mode)
        except DualModeError as exc:
            return JSONResponse(exc.as_json(), status_code=exc.status)

    def _durable(
        self, request: Request, arguments: dict[str, Any], mode: ResponseMode
    ) -> DurableResponse:
        assert self.generations is not None
        last_event_id = request.headers.get("last-event-id")
        key = self._key_of(request, arguments)
        if key is None:
            if last_event_id is not None:
                raise IdempotencyKeyError(
                    "Last-Event-ID needs the generation's idempotency key",
                    hint="send the key the first answer had in its Idempotency-Key header",
                )
            key = uuid.uuid4().hex
        response = DurableResponse(
            self.generations,
            key,
            fingerprint(arguments),
            lambda: self.func(**arguments),
            mode,
            last_event_id=last_event_id,
            batch=self.batch,
            settings=self.settings,
            statistics=self._statistics,
        )
        response.raw_headers.extend(raw_headers(self.headers))
        return response

    def _key_of(self, request: Request, arguments: dict[str, Any]) -> str | None:
        key = self.key
        if key is None:
            value = request.headers.get("idempotency-key")
        elif isinstance(key, str):
            raw = arguments.get(key)
            value = None if raw is None else str(raw)
        else:
            value = key(request)
        if value is not None and not _KEY.match(value):
            raise IdempotencyKeyError(f"idempotency key {value[:60]!r} is not valid")
        return value


def fingerprint(arguments: Mapping[str, Any]) -> str:
    """A digest of the endpoint's arguments: the same key with other arguments is refused."""
    parts: dict[str, Any] = {}
    for name, value in arguments.items():
        try:
            parts[name] = to_json(value).decode()
        except TypeError:
            parts[name] = f"<{type(value).__qualname__}>"  # dependencies, sessions, ...
    return hashlib.sha256(to_json(dict(sorted(parts.items())))).hexdigest()


def _durable_log(
    func: GeneratorFunction,
    store: Store | None,
    url: str | None,
    path: str | None,
    ttl: int | None,
) -> GenerationLog:
    if (store is None) == (url is None):
        raise ValueError("durable=True needs store= (a millstream.log.Store) or url=, not both")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise ValueError("ttl must be a positive int of seconds, or None")
    if store is not None:
        return StoreLog(store, path or f"dualmode/{func.__name__}", ttl)
    assert url is not None
    if path is not None:
        raise ValueError("path= is for store=; with url= the generations live under the URL")
    return RemoteLog(url, ttl)


def _resolved_signature(func: GeneratorFunction) -> tuple[inspect.Signature, str | None]:
    """``func``'s signature with annotations evaluated in its own module (FastAPI would
    evaluate strings in ours), and the name of its ``Request`` parameter if it has one."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # names only defined later or locally: FastAPI gets them as written
        hints = {}
    params = []
    request_name = None
    for param in signature.parameters.values():
        annotation = hints.get(param.name, param.annotation)
        if (
            request_name is None
            and isinstance(annotation, type)
            and issubclass(annotation, HTTPConnection)
        ):
            request_name = param.name
        params.append(param.replace(annotation=annotation))
    if request_name is None:
        extra = inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        position = len(params)
        if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
            position -= 1
        params.insert(position, extra)
    return signature.replace(parameters=params, return_annotation=Response), request_name


def _decorate(func: GeneratorFunction, mode: DualMode) -> DualModeEndpoint:
    signature, request_name = _resolved_signature(func)

    async def endpoint(**kwargs: Any) -> Response:
        request = kwargs.pop(_REQUEST) if request_name is None else kwargs[request_name]
        return await mode.respond(request, kwargs)

    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(endpoint, name, getattr(func, name))
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    endpoint.dualmode = mode  # type: ignore[attr-defined]
    return typing.cast(DualModeEndpoint, endpoint)


@overload
def dual_mode(func: GeneratorFunction, /) -> DualModeEndpoint: ...


@overload
def dual_mode(
    *,
    durable: bool = False,
    store: Store | None = None,
    url: str | None = None,
    path: str | None = None,
    key: KeyOption = None,
    ttl: int | None = DEFAULT_TTL,
    batch: BatchBuilder | None = None,
    detector: Callable[[Request], ResponseMode] | None = None,
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    backpressure: Backpressure | None = None,
    max_batch_items: int = 10_000,
    max_batch_bytes: int = 8 * 1024 * 1024,
    headers: Mapping[str, str] | None = None,
) -> Callable[[GeneratorFunction], DualModeEndpoint]: ...


def dual_mode(
    func: GeneratorFunction | None = None,
    /,
    *,
    durable: bool = False,
    store: Store | None = None,
    url: str | None = None,
    path: str | None = None,
    key: KeyOption = None,
    ttl: int | None = DEFAULT_TTL,
    batch: BatchBuilder | None = None,
    detector: Callable[[Request], ResponseMode] | None = None,
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    backpressure: Backpressure | None = None,
    max_batch_items: int = 10_000,
    max_batch_bytes: int = 8 * 1024 * 1024,
    headers: Mapping[str, str] | None = None,
) -> DualModeEndpoint | Callable[[GeneratorFunction], DualModeEndpoint]:
    """Turn an async generator function into an endpoint answering batch JSON or SSE.

    The mode comes from ``?stream=``, ``?format=`` or ``Accept`` (``detector`` to change
    that). Batch mode answers a JSON array of the yielded items (``batch(items)`` to build
    something else), up to ``max_batch_items``/``max_batch_bytes``. Stream mode sends each item
    as an event (``SSEEvent`` for a type), a comment every ``heartbeat`` s, ``retry`` (ms) if
    set, and buffers by ``backpressure``. ``durable=True`` writes the events to ``store`` (a
    ``millstream.log.Store``, streams under ``path``) or to the Durable Streams server at
    ``url``; ``key`` names the idempotency key (an argument's name, or a function of the
    request; default: the ``Idempotency-Key`` header); generation streams expire after ``ttl``
    seconds without reads.
    """
    settings = StreamSettings(
        heartbeat=heartbeat,
        retry=retry,
        backpressure=backpressure or Backpressure(),
        max_batch_items=max_batch_items,
        max_batch_bytes=max_batch_bytes,
    )

    def decorate(function: GeneratorFunction) -> DualModeEndpoint:
        mode = DualMode(
            function,
            durable=durable,
            store=store,
            url=url,
            path=path,
            key=key,
            ttl=ttl,
            batch=batch,
            detector=detector,
            settings=settings,
            headers=headers,
        )
        return _decorate(function, mode)

    return decorate if func is None else decorate(func)
