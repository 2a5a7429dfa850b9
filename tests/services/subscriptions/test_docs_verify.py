"""The webhook receiver in docs/subscriptions.md, run as written against a real signed delivery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from .conftest import Harness, Receiver

DOC = Path(__file__).resolve().parents[3] / "docs" / "subscriptions.md"


def documented_verify() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    (block,) = [b for b in blocks if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    return namespace["verify"]


async def test_documented_verify_accepts_real_deliveries_and_rejects_tampering(
    h: Harness, receiver: Receiver
) -> None:
    verify = documented_verify()
    await h.put_sub("doc", type="webhook", pattern="events/*", webhook={"url": receiver.url})
    await h.create_stream("events/a", b'{"n":1}')
    (delivery,) = await receiver.wait(1)
    jwks = await h.jwks()
    assert verify(delivery.raw, delivery.signature, jwks) is True
    with pytest.raises(InvalidSignature):
        verify(delivery.raw + b" ", delivery.signature, jwks)
