"""Webhook delivery: one signed POST per attempt, and the retry schedule between attempts.

PROTOCOL.md §7.1: the body is signed with Ed25519 over ``<t>.<raw body>``; a 2xx answer whose
JSON body has ``"done": true`` finishes the wake at once. Failed attempts are retried with
exponential backoff from 1 s up to 60 s with ±20% jitter. Redirects are never followed (a
redirect could point anywhere, defeating the URL validation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx
import orjson

from ._errors import SubscriptionError
from ._keys import KeyRing
from ._urls import check_resolved_target

__all__ = [
    "BASE_RETRY_DELAY_S",
    "MAX_RETRY_DELAY_S",
    "DeliveryOutcome",
    "WebhookSender",
    "backoff_delay",
]

BASE_RETRY_DELAY_S = 1.0
MAX_RETRY_DELAY_S = 60.0
JITTER = 0.2
ATTEMPT_TIMEOUT_S = 10.0  # one POST; a slow handler should answer and call back later
MAX_RESPONSE_BYTES = 64 * 1024


def backoff_delay(retry_count: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``retry_count`` (1-based): 1, 2, 4 … 60, each ±20%."""
    base: float = min(BASE_RETRY_DELAY_S * 2.0 ** max(0, retry_count - 1), MAX_RETRY_DELAY_S)
    jitter: float = (rng or random).uniform(-JITTER, JITTER)
    return base * (1 + jitter)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    ok: bool  # a 2xx answer
    done: bool  # ... whose body said {"done": true}
    detail: str  # for logs: status or error


class WebhookSender:
    """Owns the HTTP client used for every webhook attempt."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S),
            headers={"user-agent": "millstream-webhooks"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, url: str, body: bytes) -> DeliveryOutcome:
        """POST ``body`` to ``url`` signed; never raises for network or receiver faults."""
        try:
            await check_resolved_target(url)
        except SubscriptionError as exc:
            return DeliveryOutcome(False, False, exc.message)
        headers = {
            "content-type": "application/json",
            "webhook-signature": self._keys.sign_webhook(body),
        }
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
        except httpx.HTTPError as exc:
            return DeliveryOutcome(False, False, f"{type(exc).__name__}: {exc}")
        if not 200 <= status < 300:
            return DeliveryOutcome(False, False, f"HTTP {status}")
        done = False
        if size <= MAX_RESPONSE_BYTES:
            try:
                parsed = orjson.loads(b"".join(chunks)) if chunks else None
            except orjson.JSONDecodeError:
                parsed = None
            done = isinstance(parsed, dict) and parsed.get("done") is True
        return DeliveryOutcome(True, done, f"HTTP {status}")
