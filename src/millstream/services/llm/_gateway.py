"""``LLMGateway``: the LLM API service of seed 004 inside a millstream node.

Routes (all but ``/health`` need ``Authorization: Bearer <key>``; the key decides the project):
``POST /v1/chat/completions``, ``POST /v1/batch``, ``GET /v1/usage``, ``POST /v1/route``,
``GET /v1/models``, ``GET /v1/generations/<id>`` (status and text so far),
``GET /v1/generations/<id>/events`` (SSE replay and resume; also ``?access_token=`` for
browsers) and ``POST /v1/generations/<id>/cancel``. The node merges ``health()`` into
``GET /health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import orjson

from millstream._stats import Sample
from millstream.auth import AuthError, TokenRecord, TokenStore
from millstream.llm._wire import is_generation_id, parse_event_id
from millstream.log import KvWrite, LogError, Store
from millstream.server.http._body import BodyTooLarge, ClientDisconnected, read_body
from millstream.server.http._types import Receive, Scope, Send
from millstream.services import Route, Service

from ._answers import completion_body, sse_for_record
from ._config import GatewayConfig, ModelTarget, build_providers
from ._errors import GatewayError, bad_request, unauthorized
from ._generations import (
    NS_IDEMPOTENCY,
    NS_INFLIGHT,
    GenerationFailed,
    GenerationNotFound,
    GenerationRefused,
    Generations,
    Launch,
    hash_secret,
    new_generation_id,
)
from ._housekeeping import IDEMPOTENCY_TTL_SECONDS, prune_forever
from ._ledger import PERIODS, Admission, AdmissionRefused, Ledger, Ticket
from ._provider import Provider, ProviderRequest
from ._requests import ChatBody, parse_batch, parse_chat, parse_json, parse_route
from ._routing import TIERS, route
from ._tokens import estimate_prompt, estimate_tokens

__all__ = ["LLMGateway"]

log = logging.getLogger("millstream.llm")

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_RETRYABLE_ENDS = ("timed_out",)


class LLMGateway(Service):
    """See the module docstring; ``LLMGateway(store, GatewayConfig.from_env())``."""

    name = "llm"
    #: On a cluster, one node runs the gateway (``RunOnce``; the others forward to it): its
    #: start-up ends the generations a previous run left in flight, which on a shared store
    #: must not be those of another live node.
    run_once = True
    authenticates = True  # every /v1 route takes an llm:<project> key

    def __init__(self, store: Store, config: GatewayConfig) -> None:
        self.store = store
        self.config = config
        self.model_map: dict[str, ModelTarget] = config.model_map()
        self.providers: dict[str, Provider] = build_providers(config)
        self.tokens = TokenStore(store)
        self.ledger = Ledger(store, config.prices)
        self.generations = Generations(
            store, self.ledger, config.prices, ttl_seconds=config.generation_ttl_seconds
        )
        self._batch_slots = asyncio.Semaphore(config.batch_concurrency)
        self._idem_waiters: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self._started = False
        self._pruner: asyncio.Task[None] | None = None

    # -- Service --------------------------------------------------------------------------

    def routes(self) -> Sequence[Route]:
        return [
            Route("/v1/chat/completions", self),
            Route("/v1/batch", self),
            Route("/v1/usage", self),
            Route("/v1/route", self),
            Route("/v1/models", self),
            Route("/v1/generations", self),
        ]

    def describe(self) -> str:
        """One line for the startup banner."""
        if not self.model_map:
            return (
                "llm gateway: no provider configured (set ANTHROPIC_API_KEY or OPENAI_API_KEY, "
                "or run with --llm-offline)"
            )
        parts = [f"{tier}={t.provider}:{t.model}" for tier, t in self.model_map.items()]
        label = (
            " [OFFLINE MODEL: deterministic, not a real LLM]" if "offline" in self.providers else ""
        )
        return "llm gateway: " + ", ".join(parts) + label

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        ended = await self.generations.recover()
        settled = await self.ledger.recover()
        if ended or settled:
            log.warning(
                "llm: ended %d generations left running by the last run; settled %d", ended, settled
            )
        self._pruner = asyncio.create_task(prune_forever(self.store), name="llm:prune")

    async def aclose(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        await self.generations.aclose()
        await self.ledger.aclose()
        for provider in self.providers.values():
            await provider.aclose()

    async def health(self) -> dict[str, Any]:
        """``ok`` while the service answers (a provider's trouble shows under ``providers``,
        it does not make the node unhealthy); ``configured`` says whether any model is."""
        return {
            "status": "ok",
            "configured": bool(self.model_map),
            "providers": {name: p.describe() for name, p in self.providers.items()},
            "models": {tier: f"{t.provider}:{t.model}" for tier, t in self.model_map.items()},
            "offline": "offline" in self.providers,
            "running_generations": self.generations.running_count,
        }

    def samples(self) -> list[Sample]:
        """``/metrics``: tokens and cost settled since start, by project and model tier, and
        the generations running now."""
        out = [
            Sample(
                "llm_running_generations",
                "gauge",
                "LLM generations running now",
                (),
                self.generations.running_count,
            )
        ]
        for (project, tier), (inputs, outputs, cost, count) in sorted(self.ledger.settled.items()):
            labels = (("project", project), ("model", tier))
            out += [
                Sample(
                    "llm_tokens_total",
                    "counter",
                    "LLM tokens settled",
                    (*labels, ("kind", "input")),
                    inputs,
                ),
                Sample(
                    "llm_tokens_total",
                    "counter",
                    "LLM tokens settled",
                    (*labels, ("kind", "output")),
                    outputs,
                ),
                Sample("llm_cost_usd_total", "counter", "LLM cost settled, USD", labels, cost),
                Sample(
                    "llm_generations_total", "counter", "LLM generations settled", labels, count
                ),
            ]
        return out

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._dispatch(scope, receive, send)
        except GatewayError as exc:
            await _send_json(send, exc.status, exc.body(), exc.headers)
        except BodyTooLarge as exc:
            error = GatewayError(413, "request_too_large", str(exc))
            await _send_json(send, 413, error.body())
        except ClientDisconnected:
            return
        except LogError as exc:
            log.error("llm: store error: %s", exc)
            error = GatewayError(503, "storage_error", f"the store failed: {exc}")
            await _send_json(send, 503, error.body(), [(b"retry-after", b"1")])

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root and path.startswith(root):
            path = path[len(root) :]
        method: str = scope["method"]
        headers = _headers(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/v1/chat/completions":
            _allow(method, "POST")
            token, project = await self._authenticate(headers)
            body = await self._body(receive, headers)
            await self._chat(token, project, body, headers, receive, send)
        elif path == "/v1/batch":
            _allow(method, "POST")
            token, project = await self._authenticate(headers)
            body = await self._body(receive, headers)
            await self._batch(token, project, body, headers, send)
        elif path == "/v1/usage":
            _allow(method, "GET")
            _, project = await self._authenticate(headers)
            period = query.get("period", ["month"])[-1]
            if period not in PERIODS:
                raise bad_request(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
            await _send_json(send, 200, await self.ledger.usage(project, period))
        elif path == "/v1/route":
            _allow(method, "POST")
            _, project = await self._authenticate(headers)
            prompt, size = parse_route(parse_json(await self._body(receive, headers)))
            await _send_json(send, 200, await self._route_answer(project, prompt, size))
        elif path == "/v1/models":
            _allow(method, "GET")
            await self._authenticate(headers)
            await _send_json(send, 200, self._models())
        elif path.startswith("/v1/generations/"):
            await self._generation_route(path, method, headers, query, receive, send)
        else:
            raise GatewayError(404, "not_found", f"no route for {path!r}")

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else None
        return await read_body(receive, self.config.max_body_size, size)

    async def _authenticate(self, headers: dict[str, str]) -> tuple[TokenRecord, str]:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else headers.get("x-api-key", "")
        if not key:
            raise unauthorized("Missing API key: send Authorization: Bearer <key>")
        try:
            token = await self.tokens.verify(key)
        except AuthError as exc:
            raise unauthorized(f"Invalid API key: {exc}") from exc
        projects = token.targets("llm")
        if not projects:
            raise GatewayError(403, "permission_error", "this key has no llm:<project> scope")
        return token, projects[0]

    # -- chat -----------------------------------------------------------------------------

    def _resolve(self, model: str) -> str:
        if model in TIERS:
            return model
        for tier, target in self.model_map.items():
            if model == target.model:
                return tier
        known = ", ".join(["auto", *TIERS, *(t.model for t in self.model_map.values())])
        raise GatewayError(400, "invalid_model", f"unknown model {model!r}; use one of: {known}")

    async def _pick_tier(self, project: str, chat: ChatBody) -> str:
        if chat.model != "auto":
            return self._resolve(chat.model)
        remaining = await self.ledger.remaining(project)
        return route(chat.prompt_text, estimate_tokens(chat.context_text), remaining).model

    async def _chat(
        self,
        token: TokenRecord,
        project: str,
        raw: bytes,
        headers: dict[str, str],
        receive: Receive,
        send: Send,
    ) -> None:
        chat = parse_chat(parse_json(raw), max_tokens_limit=self.config.max_tokens_limit)
        resume = headers.get("last-event-id")
        if resume:
            parsed = parse_event_id(resume)
            if parsed is None:
                raise bad_request(f"Last-Event-ID {resume!r} does not name a generation event")
            generation, position = parsed
            start = await self._owned(generation, project)
            await self._stream(start, position, [], receive, send)
            return
        key = headers.get("idempotency-key")
        if key is not None and not 0 < len(key) <= 255:
            raise bad_request("Idempotency-Key must be 1 to 255 characters")
        generation, rate_headers = await self._generation_for(token, project, chat, key)
        if chat.stream:
            start = await self._owned(generation, project)
            try:  # the status line promises a generation that survives a crash
                await self.generations.admitted(generation)
            except GenerationRefused as exc:
                raise _refusal(exc.cause) from exc
            await self._stream(start, 0, rate_headers, receive, send)
            return
        await self._complete(generation, project, rate_headers, send)

    async def _generation_for(
        self, token: TokenRecord, project: str, chat: ChatBody, key: str | None
    ) -> tuple[str, list[tuple[bytes, bytes]]]:
        """The generation answering this request: an existing one for a repeated
        ``Idempotency-Key``, else a newly admitted and launched one."""
        if key is None:
            return await self._launch(token, project, chat, None, None)
        slot = (project, key)
        while True:
            waiter = self._idem_waiters.get(slot)
            if waiter is not None:
                leader = await asyncio.shield(waiter)
                if leader is not None:
                    return leader, []
                continue
            item = await self.store.kv_get(NS_IDEMPOTENCY, f"{project}/{key}")
            expect = 0
            if item is not None:
                record = orjson.loads(item.value)
                if record["hash"] != chat.fingerprint():
                    raise GatewayError(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request body",
                    )
                fresh = time.time() - record["created"] < IDEMPOTENCY_TTL_SECONDS
                end = await self.generations.terminal(record["gen"])
                if fresh and not (end and _rerun(end)):
                    return record["gen"], []
                expect = item.version
            # Concurrent requests with this key wait for this one (None: it failed, try again).
            future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._idem_waiters[slot] = future
            try:
                generation, headers = await self._launch(token, project, chat, key, expect)
                # Owning the key is known once it is on disk (the provider call runs meanwhile).
                await self.generations.admitted(generation)
            except GenerationRefused as exc:
                if not (isinstance(exc.cause, AdmissionRefused) and exc.cause.kind == "conflict"):
                    raise _refusal(exc.cause) from exc
                continue  # another node took the key meanwhile: attach to its generation
            finally:
                del self._idem_waiters[slot]
                if not future.done():
                    future.set_result(None)
            future.set_result(generation) if not future.done() else None
            return generation, headers

    async def _launch(
        self,
        token: TokenRecord,
        project: str,
        chat: ChatBody,
        key: str | None,
        expect: int | None,
    ) -> tuple[str, list[tuple[bytes, bytes]]]:
        tier = await self._pick_tier(project, chat)
        target = self.model_map.get(tier)
        if target is None:
            raise GatewayError(
                503,
                "provider_not_configured",
                "No LLM provider is configured: set ANTHROPIC_API_KEY or OPENAI_API_KEY, "
                "or run millstream serve --llm-offline for the built-in offline model",
            )
        generation = new_generation_id()
        read_token = secrets.token_urlsafe(16)
        prompt_tokens = estimate_prompt(chat.messages, chat.system)
        max_tokens = chat.max_tokens or self.config.default_max_tokens
        ticket = Ticket(
            project=project,
            token_id=token.id,
            limits=self.config.rate_limits.for_key(token.meta),
            tier=tier,
            model_id=target.model,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
        )
        launch = Launch(
            id=generation,
            project=project,
            token_id=token.id,
            tier=tier,
            provider=self.providers[target.provider],
            request=ProviderRequest(
                model=target.model,
                messages=chat.messages,
                max_tokens=max_tokens,
                stream=chat.stream,
                system=chat.system,
                temperature=chat.temperature,
            ),
            timeout=chat.timeout,
            prompt_tokens=prompt_tokens,
            reserve_tokens=0,
            reserve_usd=0.0,
            month="",
            read_token_hash=hash_secret(read_token),
        )

        def writes(admission: Admission) -> list[KvWrite]:
            # The in-flight marker carries the reservation: recovery settles from it.
            launch.reserve_tokens = admission.reserve_tokens
            launch.reserve_usd = admission.reserve_usd
            launch.month = admission.month
            out = [KvWrite(NS_INFLIGHT, generation, launch.inflight_record(), expect_version=0)]
            if key is not None:
                idem = {"gen": generation, "hash": chat.fingerprint(), "created": time.time()}
                out.append(
                    KvWrite(
                        NS_IDEMPOTENCY,
                        f"{project}/{key}",
                        orjson.dumps(idem),
                        expect_version=expect,
                    )
                )
            return out

        ticket.writes_for = writes
        try:
            admission = await self.ledger.admit(ticket)
        except AdmissionRefused as exc:
            raise _refusal(exc) from exc
        if admission.max_tokens != max_tokens:
            launch.request = ProviderRequest(
                model=target.model,
                messages=chat.messages,
                max_tokens=admission.max_tokens,
                stream=chat.stream,
                system=chat.system,
                temperature=chat.temperature,
            )
        self.generations.launch(launch, admission.durable)
        resume = f"/v1/generations/{generation}/events?access_token={read_token}"
        return generation, [*admission.rate_headers, (b"x-millstream-resume-url", resume.encode())]

    async def _owned(self, generation: str, project: str) -> dict[str, Any]:
        try:
            start = await self.generations.start_record(generation)
        except GenerationNotFound:
            start = None
        if start is None or start.get("project") != project:
            raise GatewayError(404, "generation_not_found", f"no generation {generation!r}")
        return start

    async def _complete(
        self, generation: str, project: str, headers: list[tuple[bytes, bytes]], send: Send
    ) -> None:
        start, content, end = await self._outcome(generation)
        if end["status"] != "completed":
            raise _end_error(end)
        headers = [(b"x-millstream-generation", generation.encode()), *headers]
        await _send_json(send, 200, completion_body(start, content, end, project), headers)

    async def _outcome(self, generation: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """``Generations.outcome`` with its failures as answers."""
        try:
            return await self.generations.outcome(generation)
        except GenerationNotFound as exc:
            raise GatewayError(
                404, "generation_not_found", f"no generation {generation!r}"
            ) from exc
        except GenerationRefused as exc:
            raise _refusal(exc.cause) from exc
        except GenerationFailed as exc:
            raise GatewayError(503, "storage_error", str(exc), [(b"retry-after", b"1")]) from exc

    async def _stream(
        self,
        start: dict[str, Any],
        position: int,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        generation = start["id"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *_SSE_HEADERS,
                    (b"x-millstream-generation", generation.encode()),
                    *headers,
                ],
            }
        )

        async def pump() -> None:
            try:
                async for pos, record in self.generations.events(generation, position):
                    data = sse_for_record(start, pos, record)
                    if data:
                        await send({"type": "http.response.body", "body": data, "more_body": True})
            except (GenerationNotFound, GenerationRefused, GenerationFailed, LogError) as exc:
                error = {"error": {"type": "generation_unavailable", "message": str(exc)}}
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"data: " + orjson.dumps(error) + b"\n\n",
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        task = asyncio.create_task(pump())
        watcher = asyncio.create_task(_watch_disconnect(receive, task))
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            watcher.cancel()

    # -- generations ----------------------------------------------------------------------

    async def _generation_route(
        self,
        path: str,
        method: str,
        headers: dict[str, str],
        query: dict[str, list[str]],
        receive: Receive,
        send: Send,
    ) -> None:
        rest = path[len("/v1/generations/") :]
        generation, _, action = rest.partition("/")
        if not is_generation_id(generation):
            raise GatewayError(404, "generation_not_found", f"no generation {generation!r}")
        if action == "events":
            _allow(method, "GET")
            start = await self._reader_start(generation, headers, query)
            position = 0
            resume = headers.get("last-event-id")
            if resume:
                parsed = parse_event_id(resume)
                if parsed is None or parsed[0] != generation:
                    raise bad_request(f"Last-Event-ID {resume!r} is not an event of {generation}")
                position = parsed[1]
            elif "from" in query:
                value = query["from"][-1]
                if not value.isdigit():
                    raise bad_request("'from' must be a non-negative integer")
                position = int(value)
            await self._stream(start, position, [], receive, send)
            return
        _, project = await self._authenticate(headers)
        start = await self._owned(generation, project)
        if action == "cancel":
            _allow(method, "POST")
            cancelled = await self.generations.cancel(generation)
            end = await self.generations.terminal(generation)
            await _send_json(send, 200, {"id": generation, "cancelled": cancelled, "end": end})
        elif action == "":
            _allow(method, "GET")
            texts: list[str] = []
            end = None
            async for _, record in self.generations.events(generation, 0, follow=False):
                if record.get("type") == "delta":
                    texts.append(record["text"])
                elif record.get("type") == "end":
                    end = record
            body = {
                "id": generation,
                "model": start["model"],
                "provider_model": start["provider_model"],
                "created": start["created"],
                "status": end["status"] if end else "running",
                "content": "".join(texts),
                "end": end,
            }
            await _send_json(send, 200, body)
        else:
            raise GatewayError(404, "not_found", f"no route for {path!r}")

    async def _reader_start(
        self, generation: str, headers: dict[str, str], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        access = query.get("access_token", [""])[-1]
        if access:
            try:
                start = await self.generations.start_record(generation)
            except GenerationNotFound:
                start = None
            if start is not None and secrets.compare_digest(
                start.get("read_token_hash", ""), hash_secret(access)
            ):
                return start
            raise unauthorized("this access_token does not open this generation")
        _, project = await self._authenticate(headers)
        return await self._owned(generation, project)

    # -- batch, route, models -------------------------------------------------------------

    async def _batch(
        self, token: TokenRecord, project: str, raw: bytes, headers: dict[str, str], send: Send
    ) -> None:
        batch = parse_batch(parse_json(raw))
        key = headers.get("idempotency-key")

        async def one(index: int, item_id: str | None, prompt: str) -> dict[str, Any]:
            chat = ChatBody(
                messages=[{"role": "user", "content": prompt}],
                system=None,
                model=batch.model,
                max_tokens=None,
                timeout=batch.timeout,
                stream=False,
                temperature=None,
            )
            result: dict[str, Any] = {"id": item_id, "prompt": prompt}
            async with self._batch_slots:
                try:
                    item_key = None if key is None else f"{key}/batch/{index}"
                    generation, _ = await self._generation_for(token, project, chat, item_key)
                    start, content, end = await self._outcome(generation)
                except GatewayError as exc:
                    return {**result, "status": "failed", "error": exc.detail}
            if end["status"] != "completed":
                return {**result, "status": "failed", "error": _end_error(end).detail}
            body = completion_body(start, content, end, project)
            return {
                **result,
                "status": "completed",
                "content": content,
                "usage": {
                    k: body["usage"][k] for k in ("input_tokens", "output_tokens", "total_tokens")
                },
                "cost": end["cost"],
                "model": start["model"],
            }

        results = await asyncio.gather(
            *(one(i, item_id, prompt) for i, (item_id, prompt) in enumerate(batch.items))
        )
        done = [r for r in results if r["status"] == "completed"]
        await _send_json(
            send,
            200,
            {
                "total": len(results),
                "completed": len(done),
                "failed": len(results) - len(done),
                "results": results,
                "total_cost": round(sum(r["cost"] for r in done), 8),
                "total_tokens": sum(r["usage"]["total_tokens"] for r in done),
            },
        )

    async def _route_answer(self, project: str, prompt: str, size: int | None) -> dict[str, Any]:
        remaining = await self.ledger.remaining(project)
        context = size if size is not None else estimate_tokens(prompt)
        decision = route(prompt, context, remaining)
        record = await self.ledger.project(project)
        limit = record.budget_tokens if record else None
        if limit is None:
            status = "unlimited"
        elif remaining == 0:
            status = "exceeded"
        elif remaining is not None and remaining < 5_000:
            status = "low"
        else:
            status = "ok"
        return {
            "recommended_model": decision.model,
            "reasoning": decision.reasoning,
            "budget_status": {"status": status, "limit": limit, "remaining": remaining},
        }

    def _models(self) -> dict[str, Any]:
        data = [
            {
                "id": tier,
                "object": "model",
                "owned_by": target.provider,
                "provider_model": target.model,
            }
            for tier, target in self.model_map.items()
        ]
        if self.model_map:
            data.insert(0, {"id": "auto", "object": "model", "owned_by": "millstream"})
        return {"object": "list", "data": data}


def _refusal(cause: BaseException) -> GatewayError:
    """The answer to an admission that was refused, or whose commit failed."""
    if isinstance(cause, AdmissionRefused):
        if cause.kind == "budget":
            return GatewayError(
                429, "budget_exceeded", cause.message, [(b"x-should-retry", b"false")]
            )
        if cause.kind == "rate" and cause.decision is not None:
            retry = str(int(cause.decision.retry_after)).encode()
            return GatewayError(
                429,
                "rate_limit_exceeded",
                cause.message,
                [(b"retry-after", retry), *cause.decision.headers],
            )
        return GatewayError(409, "conflict", cause.message)
    return GatewayError(
        503, "storage_error", f"the store failed: {cause}", [(b"retry-after", b"1")]
    )


def _rerun(end: dict[str, Any]) -> bool:
    """A repeated Idempotency-Key runs the request again only if it ended for a transient
    reason (timed out, provider overloaded or rate limited, gateway restarted)."""
    if end["status"] in _RETRYABLE_ENDS:
        return True
    error = end.get("error") or {}
    return end["status"] == "failed" and error.get("type") in (
        "upstream_rate_limited",
        "upstream_overloaded",
        "upstream_server",
        "upstream_connection",
        "upstream_timeout",
        "gateway_restarted",
        "gateway_stopped",
    )


def _end_error(end: dict[str, Any]) -> GatewayError:
    error = end.get("error") or {}
    message = str(error.get("message", end["status"]))
    kind = str(error.get("type", end["status"]))
    if end["status"] == "timed_out":
        return GatewayError(504, "timeout", f"Request timed out: {message}")
    if end["status"] == "cancelled":
        return GatewayError(409, "generation_cancelled", "The generation was cancelled")
    if kind in ("upstream_rate_limited", "upstream_overloaded"):
        retry = error.get("retry_after")
        headers = [(b"retry-after", str(max(1, int(retry or 1))).encode())]
        return GatewayError(
            503, "provider_overloaded", f"The provider is overloaded: {message}", headers
        )
    if kind in ("gateway_restarted", "gateway_stopped"):
        return GatewayError(503, kind, message, [(b"retry-after", b"1")])
    if kind == "upstream_bad_request":
        return GatewayError(400, kind, message)
    return GatewayError(502, kind if kind.startswith("upstream") else "upstream_error", message)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise GatewayError(
            405, "method_not_allowed", f"use {allowed}", [(b"allow", allowed.encode())]
        )


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *_JSON_HEADERS,
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _watch_disconnect(receive: Receive, task: asyncio.Task[None]) -> None:
    """Stop sending when the client goes away; the generation itself runs on."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            task.cancel()
            return
