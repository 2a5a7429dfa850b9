"""Pure parts and store-level behaviour: routing rules, rate windows, tokens, the ledger under
concurrency, and the pinned exports."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import millstream.auth
import millstream.llm
from millstream.auth import InvalidToken, RevokedToken, TokenStore
from millstream.llm._wire import event_id, parse_event_id
from millstream.log import KvWrite, MemoryStore
from millstream.services.llm import GatewayConfig, LLMGateway, PriceTable
from millstream.services.llm._generations import NS_IDEMPOTENCY, NS_INFLIGHT
from millstream.services.llm._housekeeping import prune
from millstream.services.llm._ledger import (
    Admission,
    AdmissionRefused,
    Ledger,
    Settlement,
    Ticket,
    hour_key,
    month_key,
)
from millstream.services.llm._ratelimit import RateLimits, RateWindow
from millstream.services.llm._routing import route


@pytest.mark.parametrize(
    ("prompt", "context", "remaining", "model"),
    [
        ("anything", 10, 999, "haiku"),
        ("anything", 10_001, None, "opus"),
        ("list the files", 10, None, "haiku"),
        ("x" * 120 + " list", 10, None, "sonnet"),
        ("Please review my design", 10, None, "sonnet"),
        ("Please review my design", 10, 4_000, "haiku"),
        ("the latest news", 10, None, "sonnet"),  # "latest" is not "test"
        ("Testing strategy for the app", 10, None, "sonnet"),
        ("hello", 10, None, "sonnet"),
    ],
)
def test_auto_routing_rules(prompt: str, context: int, remaining: int | None, model: str) -> None:
    assert route(prompt, context, remaining).model == model


def test_rate_window_counts_and_fades() -> None:
    window = RateWindow()
    limits = RateLimits(requests_per_minute=3, tokens_per_minute=None)
    now = 6000.0  # the start of a minute
    assert [window.check(limits, 1, now + i).allowed for i in range(4)] == [True] * 3 + [False]
    refused = window.check(limits, 1, now + 10)
    assert not refused.allowed
    assert 1 <= refused.retry_after <= 120
    assert (b"x-ratelimit-remaining-requests", b"0") in refused.headers
    # Half a minute into the next minute, half of the previous minute's 3 still count.
    assert window.check(limits, 1, now + 90).allowed
    assert window.check(RateLimits(None, 100), 101, now + 200).allowed is False


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
def test_event_ids_round_trip(prefix: str, position: int) -> None:
    generation = "gen-" + "ab" * 16
    assert parse_event_id(event_id(generation, position)) == (generation, position)
    assert parse_event_id(prefix) is None or prefix.startswith("gen-")


async def test_tokens_verify_revoke_and_never_store_secrets() -> None:
    store = MemoryStore()
    tokens = TokenStore(store)
    new = await tokens.create("acme", ["llm:acme"])
    assert (await tokens.verify(new.token)).targets("llm") == ["acme"]
    stored = await store.kv_get(millstream.auth.TOKENS_NAMESPACE, new.record.id)
    assert stored is not None
    assert new.token.split("_", 2)[2].encode() not in stored.value
    with pytest.raises(InvalidToken):
        await tokens.verify(new.token[:-1] + ("A" if new.token[-1] != "A" else "B"))
    await tokens.revoke(new.record.id)
    with pytest.raises(RevokedToken):
        await tokens.verify(new.token)


async def test_ledger_admissions_race_a_budget() -> None:
    store = MemoryStore()
    ledger = Ledger(store, PriceTable())
    await ledger.ensure_project("p", budget_tokens=1_000)

    def ticket() -> Ticket:
        return Ticket("p", "k", RateLimits(None, None), "haiku", None, 10, 100)

    outcomes = await asyncio.gather(
        *(ledger.admit(ticket()) for _ in range(50)), return_exceptions=True
    )
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, AdmissionRefused)]
    assert sum(a.reserve_tokens for a in admitted) <= 1_000
    assert refused
    assert all(r.kind == "budget" for r in refused)
    # Settling at actual usage frees the rest of the reservations.
    for index, admission in enumerate(admitted):
        await ledger.settle(
            Settlement(
                f"g{index}",
                "p",
                admission.month,
                "haiku",
                admission.reserve_tokens,
                admission.reserve_usd,
                10,
                5,
                0.0,
                0.0,
            )
        )
    counter = await ledger.month_counter("p")
    assert counter["reserved_tokens"] == 0
    assert counter["tokens"] == 15 * len(admitted)


async def test_two_nodes_racing_a_budget_never_overspend() -> None:
    """Two ledgers on one store (two nodes): each admits against its own book at once; the
    commits conflict, and what no longer fits is refused before anything of it is stored."""
    store = MemoryStore()
    nodes = [Ledger(store, PriceTable()), Ledger(store, PriceTable())]
    await nodes[0].ensure_project("p", budget_tokens=1_000)

    def ticket() -> Ticket:
        return Ticket("p", "k", RateLimits(None, None), "haiku", None, 10, 90)

    decided = await asyncio.gather(
        *(nodes[i % 2].admit(ticket()) for i in range(40)), return_exceptions=True
    )
    admitted = [a for a in decided if isinstance(a, Admission)]
    assert sum(a.reserve_tokens for a in admitted) > 1_000  # each node alone thought it fit
    durable = await asyncio.gather(*(a.durable for a in admitted), return_exceptions=True)
    kept = [a for a, d in zip(admitted, durable, strict=True) if d is None]
    refused = [d for d in durable if d is not None]
    assert refused
    assert all(isinstance(r, AdmissionRefused) and r.kind == "budget" for r in refused)
    assert sum(a.reserve_tokens for a in kept) <= 1_000
    item = await store.kv_get("llm.usage", f"p/m/{kept[0].month}")
    assert item is not None
    assert orjson.loads(item.value)["reserved_tokens"] == sum(a.reserve_tokens for a in kept)


async def test_prune_drops_expired_keys_and_old_buckets_only() -> None:
    store = MemoryStore()
    ledger = Ledger(store, PriceTable())
    now = time.time()

    def settlement(generation: str, finished: float) -> Settlement:
        return Settlement(
            generation, "p", month_key(finished), "haiku", 0, 0.0, 5, 5, 0.0, finished
        )

    await ledger.settle(settlement("old", now - 70 * 86_400))
    await ledger.settle(settlement("new", now - 3_600))
    await store.kv_write(
        [
            KvWrite(NS_IDEMPOTENCY, f"p/{key}", orjson.dumps({"gen": key, "created": created}))
            for key, created in (("stale", now - 25 * 3_600), ("fresh", now - 3_600))
        ]
    )
    assert await prune(store, now) == 2
    assert [key for key, _ in await store.kv_scan(NS_IDEMPOTENCY)] == ["p/fresh"]
    hours = [key for key, _ in await store.kv_scan("llm.usage", "p/h/")]
    assert hours == [f"p/h/{hour_key(now - 3_600)}"]
    assert (await ledger.usage("p", "day", now))["total_tokens"] == 10
    assert await prune(store, now) == 0


async def test_gateway_refuses_what_another_node_spent_first() -> None:
    """The gateway decides from its own book and starts the provider call; when another node
    spent the budget meanwhile, its commit conflicts, the admission is refused, the call is
    cancelled and the client gets the budget 429, nothing of the generation on disk. (In
    process: two nodes need a shared store that several processes can write, which only the
    PostgreSQL store will be.)"""
    store = MemoryStore()
    await store.start()
    gateway = LLMGateway(store, GatewayConfig(offline=True, offline_token_delay=0.05))
    await gateway.start()
    other = Ledger(store, PriceTable())
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    try:
        for project, stream in (("plain", False), ("streamed", True)):
            await gateway.ledger.ensure_project(project, budget_tokens=1_000)
            key = (await TokenStore(store).create(project, [f"llm:{project}"])).token
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=gateway),
                base_url="http://gw",
                headers={"authorization": f"Bearer {key}"},
            ) as http:
                first = await http.post("/v1/chat/completions", json=body)
                assert first.status_code == 200  # the gateway's book now holds the counter
                used = first.json()["usage"]["total_tokens"]
                limits = RateLimits(None, None)
                spent = await other.admit(
                    Ticket(project, "k", limits, "haiku", None, 0, 1_000 - used)
                )
                await spent.durable  # the other node took everything left
                answer = await http.post("/v1/chat/completions", json={**body, "stream": stream})
            assert answer.status_code == 429, answer.text
            assert answer.json()["error"]["type"] == "budget_exceeded"
            usage = await gateway.ledger.usage(project, "month")
            assert usage["total_tokens"] == used
        assert await store.kv_scan(NS_INFLIGHT) == []
        for _ in range(500):  # the refused generations' tasks end once cancelled
            if gateway.generations.running_count == 0:
                break
            await asyncio.sleep(0.01)
        assert gateway.generations.running_count == 0
    finally:
        await gateway.aclose()
        await store.aclose()


def test_exports_are_pinned() -> None:
    assert millstream.llm.__all__ == sorted(millstream.llm.__all__)
    assert {
        "AsyncClaudeClient",
        "AuthenticationError",
        "BatchResponse",
        "BatchResult",
        "BudgetExceededError",
        "ClaudeAPIError",
        "ClaudeClient",
        "Model",
        "RateLimitError",
        "Response",
        "TimeoutError",
        "Usage",
        "UsageStats",
    } <= set(millstream.llm.__all__)
    assert {"TOKENS_NAMESPACE", "AuthError", "InvalidToken", "TokenStore", "parse_token"} <= set(
        millstream.auth.__all__
    )  # the whole list is pinned in tests/security/test_auth_units.py
    for name in millstream.llm.__all__:
        assert getattr(millstream.llm, name)
