"""Durability over HTTP: ``kill -9`` a real ``millstream serve --data-dir`` in the middle of
concurrent appends (plain and idempotent-producer), restart it on the same directory, and check
that every acknowledged append is there exactly once, in order, untorn, that appends continue
at the right offsets, and that closure, forks and producer state survive. Several cycles."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from log.crash_check import Ledger
from log.crash_worker import plain_payload, producer_payload
from millstream.log import format_offset, parse_offset
from servers import ServerProcess, millstream_argv

CYCLES = 3
PLAIN_WRITERS = 8
PRODUCER_WRITERS = 8
TEXT = {"content-type": "text/plain"}


def _stream(path: str) -> str:
    return f"/v1/stream/{path}"


async def _read_messages(client: httpx.AsyncClient, path: str) -> list[bytes]:
    """Every message of a text/plain stream whose messages each end with a newline."""
    body = b""
    offset = "-1"
    while True:
        response = await client.get(_stream(path), params={"offset": offset})
        assert response.status_code == 200, response.text
        body += response.content
        offset = response.headers["stream-next-offset"]
        if response.headers.get("stream-up-to-date") == "true":
            break
    assert not body or body.endswith(b"\n"), "the stream ends in a partial message"
    return body.split(b"\n")[:-1]


async def _set_up(client: httpx.AsyncClient) -> None:
    for path in ("plain", "idem", "closed", "src"):
        assert (await client.put(_stream(path), headers=TEXT)).status_code == 201
    for i in range(3):
        await client.post(_stream("src"), content=f"s{i}\n".encode(), headers=TEXT)
    fork = await client.put(
        _stream("fork"),
        headers={"stream-forked-from": _stream("src"), "stream-fork-offset": format_offset(2)},
    )
    assert fork.status_code == 201, fork.text
    assert (await client.post(_stream("fork"), content=b"f0\n", headers=TEXT)).status_code == 204
    assert (await client.delete(_stream("src"))).status_code == 204  # soft: the fork needs it
    closing = await client.post(_stream("closed"), content=b"bye\n", headers=_close_headers())
    assert closing.status_code == 200, closing.text


def _close_headers() -> dict[str, str]:
    return {
        **TEXT,
        "stream-closed": "true",
        "producer-id": "closer",
        "producer-epoch": "0",
        "producer-seq": "0",
    }


async def _check_survivors(client: httpx.AsyncClient) -> None:
    """Closure, forks, soft deletes and producer state came back from the file."""
    head = await client.head(_stream("closed"))
    assert head.headers.get("stream-closed") == "true"
    refused = await client.post(_stream("closed"), content=b"more\n", headers=TEXT)
    assert refused.status_code == 409
    retry = await client.post(_stream("closed"), content=b"bye\n", headers=_close_headers())
    assert retry.status_code == 204  # the closing producer's retry is a duplicate
    assert await _read_messages(client, "closed") == [b"bye"]
    assert await _read_messages(client, "fork") == [b"s0", b"s1", b"f0"]
    assert (await client.head(_stream("src"))).status_code == 410


async def _load(
    client: httpx.AsyncClient, server: ServerProcess, ledger: Ledger, cycle: int
) -> None:
    """Append from many tasks until the server is killed after enough acknowledgements."""
    target = ledger.acks + 300 + 150 * cycle
    killed = asyncio.Event()
    enough = asyncio.Event()

    async def plain(task: int) -> None:
        n = 0
        while not killed.is_set():
            try:
                response = await client.post(
                    _stream("plain"), content=plain_payload(cycle, task, n) + b"\n", headers=TEXT
                )
            except httpx.TransportError:
                return
            assert response.status_code == 204, response.text
            tail = parse_offset(response.headers["stream-next-offset"])
            assert tail is not None
            ledger.ack_plain(cycle, task, n, tail)
            if ledger.acks >= target:
                enough.set()
            n += 1

    async def producer(task: int) -> None:
        seq = ledger.next_seqs.get(task, 0)
        while not killed.is_set():
            headers = {
                **TEXT,
                "producer-id": f"prod{task}",
                "producer-epoch": "0",
                "producer-seq": str(seq),
            }
            try:
                response = await client.post(
                    _stream("idem"), content=producer_payload(task, seq) + b"\n", headers=headers
                )
            except httpx.TransportError:
                return
            assert response.status_code in (200, 204), response.text
            tail = parse_offset(response.headers["stream-next-offset"])
            assert tail is not None
            outcome = "appended" if response.status_code == 200 else "duplicate"
            ledger.ack_idem(task, seq, outcome, tail)
            if ledger.acks >= target:
                enough.set()
            seq += 1

    async def killer() -> None:
        await enough.wait()
        await asyncio.sleep(random.uniform(0, 0.05))
        await asyncio.to_thread(server.kill)
        killed.set()

    writers = [plain(t) for t in range(PLAIN_WRITERS)]
    writers += [producer(t) for t in range(PRODUCER_WRITERS)]
    await asyncio.wait_for(asyncio.gather(killer(), *writers), 60)


async def _verify(client: httpx.AsyncClient, ledger: Ledger, cycle: int) -> None:
    plain = await _read_messages(client, "plain")
    idem = await _read_messages(client, "idem")
    ledger.verify(plain, idem)
    probe = f"probe-{cycle}".encode()
    response = await client.post(_stream("plain"), content=probe + b"\n", headers=TEXT)
    assert response.status_code == 204
    assert parse_offset(response.headers["stream-next-offset"]) == len(plain) + 1
    ledger.probes.append(probe)
    await _check_survivors(client)


async def _start(data_dir: Path) -> ServerProcess:
    argv = millstream_argv("--data-dir", str(data_dir))
    return await asyncio.to_thread(ServerProcess, argv)


@pytest.mark.slow
async def test_kill_9_mid_load_then_restart_keeps_every_acknowledged_append(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    ledger = Ledger()
    limits = httpx.Limits(max_connections=PLAIN_WRITERS + PRODUCER_WRITERS)
    for cycle in range(CYCLES + 1):
        server = await _start(data_dir)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as client:
                if cycle == 0:
                    await _set_up(client)
                else:
                    await _verify(client, ledger, cycle)
                if cycle < CYCLES:
                    before = ledger.acks
                    await _load(client, server, ledger, cycle)
                    assert ledger.acks > before
        finally:
            await asyncio.to_thread(server.terminate)
    assert len(ledger.plain_acked) > 500
    assert len(ledger.probes) == CYCLES
