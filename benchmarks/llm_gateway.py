"""LLM gateway benchmark: one fake OpenAI-compatible provider (``tests/llm/fake_provider.py``)
called directly, through ``millstream serve``'s gateway, and through the LiteLLM proxy
(``litellm[proxy]``, pinned in ``_peers.py``, installed in a virtualenv of its own under
``benchmarks/.work/``), side by side in one run.

``python -m benchmarks.llm_gateway [--requests 300] [--streams 1000] [--fsync always]``

The provider answers like a (very fast) model: the first token after ``--first-token-ms``
(prefill), then ``--tokens`` tokens ``--token-ms`` apart; a non-streamed answer takes the sum.
Figures:

- non-streamed latency p50/p99 and what each gateway adds to direct (requests are sent to the
  targets in turn, one at a time, so every target sees the same machine load), and the CPU the
  target's processes used per request meanwhile (all threads; for direct, the fake provider's);
- streamed: time to first token and inter-token delay (p50), measured the same way;
- 1,000 concurrent streams through each target: failed streams (anything but a 200 ending in
  ``[DONE]`` with every token) and the peak RSS of the target's process tree while they run.

millstream runs with its defaults (SQLite store, ``--fsync always``: a 2xx means the
generation is on disk), the data directory under ``benchmarks/.work/`` (real disk, not tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import orjson

from benchmarks import _peers

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import ServerProcess, millstream_argv  # noqa: E402

FAKE_KEY = "sk-bench"
PROMPT = [{"role": "user", "content": "benchmark prompt"}]


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    model: str
    pid: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (LiteLLM may run workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending += [int(c) for c in children]
    return found


def tree_rss_mib(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``'s tree so far (every thread), in seconds."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def one_unary(http: aiohttp.ClientSession, target: Target) -> float:
    started = time.perf_counter()
    body = {"model": target.model, "messages": PROMPT}
    async with http.post(target.url, headers=target.headers, json=body) as answer:
        data = await answer.read()
    assert answer.status == 200, (target.name, answer.status, data[:300])
    assert orjson.loads(data)["choices"][0]["message"]["content"].startswith("w0 ")
    return (time.perf_counter() - started) * 1000


def _is_token(line: bytes) -> bool:
    return b'"content":"w' in line.replace(b" ", b"")


async def one_stream(
    http: aiohttp.ClientSession, target: Target, tokens: int
) -> tuple[float, list[float]]:
    body = {"model": target.model, "messages": PROMPT, "stream": True}
    started = time.perf_counter()
    arrivals: list[float] = []
    async with http.post(target.url, headers=target.headers, json=body) as answer:
        assert answer.status == 200, (target.name, answer.status)
        async for line in answer.content:
            if _is_token(line):
                arrivals.append(time.perf_counter())
    assert len(arrivals) == tokens, f"{target.name}: {len(arrivals)} of {tokens} tokens"
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    return (arrivals[0] - started) * 1000, gaps


def _session(connections: int, timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


async def interleaved(
    targets: list[Target], requests: int, streams: int, tokens: int
) -> dict[str, dict[str, float]]:
    """Latency figures, sending to the targets in turn."""
    lat: dict[str, list[float]] = {t.name: [] for t in targets}
    ttft: dict[str, list[float]] = {t.name: [] for t in targets}
    gaps: dict[str, list[float]] = {t.name: [] for t in targets}
    async with _session(10, 60) as http:
        for target in targets:  # warm-up: connections, caches, the gateway's first project load
            for _ in range(10):
                await one_unary(http, target)
                await one_stream(http, target, tokens)
        cpu = {t.name: tree_cpu_seconds(t.pid) for t in targets}
        for _ in range(requests):
            for target in targets:
                lat[target.name].append(await one_unary(http, target))
        for t in targets:  # the target's own CPU per request (direct: the provider's)
            cpu[t.name] = (tree_cpu_seconds(t.pid) - cpu[t.name]) / requests * 1000
        for _ in range(streams):
            for target in targets:
                first, between = await one_stream(http, target, tokens)
                ttft[target.name].append(first)
                gaps[target.name] += between
    return {
        t.name: {
            "p50": statistics.median(lat[t.name]),
            "cpu": cpu[t.name],
            "p99": percentile(lat[t.name], 0.99),
            "ttft50": statistics.median(ttft[t.name]),
            "ttft99": percentile(ttft[t.name], 0.99),
            "gap50": statistics.median(gaps[t.name]),
            "gap99": percentile(gaps[t.name], 0.99),
        }
        for t in targets
    }


async def concurrent(
    target: Target, count: int, tokens: int
) -> tuple[int, float, float, list[str]]:
    """``count`` streams at once: (failed streams, peak RSS MiB of the target, seconds, a few
    reasons for failures)."""
    peak = tree_rss_mib(target.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, tree_rss_mib(target.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    body = {"model": target.model, "messages": PROMPT, "stream": True}
    reasons: list[str] = []
    started = time.perf_counter()
    async with _session(count + 10, 300) as http:

        async def one() -> bool:
            try:
                async with http.post(target.url, headers=target.headers, json=body) as answer:
                    lines = [line async for line in answer.content]
            except (aiohttp.ClientError, TimeoutError) as exc:
                reasons.append(repr(exc)[:200])
                return False
            seen = sum(1 for line in lines if _is_token(line))
            ended = any(line.strip() == b"data: [DONE]" for line in lines)
            if answer.status == 200 and ended and seen == tokens:
                return True
            text = b"".join(lines)[-200:].decode("utf-8", "replace")
            reasons.append(f"status {answer.status}, {seen} tokens, [DONE] {ended}: {text!r}")
            return False

        results = await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return results.count(False), peak, elapsed, reasons[:3]


@contextmanager
def fake_provider(args: argparse.Namespace) -> Iterator[ServerProcess]:
    script = REPO / "tests" / "llm" / "fake_provider.py"
    fake = ServerProcess([sys.executable, str(script), "--openai-key", FAKE_KEY])
    try:
        settings = {
            "tokens": args.tokens,
            "token_delay": args.token_ms / 1000,
            "first_token_delay": args.first_token_ms / 1000,
        }
        httpx.post(fake.url + "/_fake/config", json=settings).raise_for_status()
        yield fake
    finally:
        fake.terminate()


@contextmanager
def millstream(fake: ServerProcess, args: argparse.Namespace) -> Iterator[Target]:
    data = _peers.WORK / f"llm-gateway-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    env = {
        **os.environ,
        "OPENAI_API_KEY": FAKE_KEY,
        "OPENAI_BASE_URL": fake.url + "/v1",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    argv = millstream_argv(
        "--no-kafka",
        "--data-dir",
        str(data),
        "--fsync",
        args.fsync,
        "--llm-rpm",
        "0",
        "--llm-model",
        "sonnet=openai:fake-model",
    )
    server = ServerProcess(argv, env=env)
    try:
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "millstream",
                "keys",
                "create",
                "--project",
                "bench",
                "--data-dir",
                str(data),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        key = made.stdout.strip().splitlines()[-1]
        yield Target(
            "millstream",
            server.url + "/v1/chat/completions",
            {"authorization": f"Bearer {key}"},
            "sonnet",
            server.process.pid,
        )
    finally:
        server.terminate()
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def litellm(fake: ServerProcess) -> Iterator[Target]:
    _peers.ensure_litellm()
    work = _peers.WORK / f"litellm-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    # A master key, as LiteLLM requires before it starts; with no database it checks it in
    # memory (millstream checks its key in its store on every request).
    master = "sk-" + secrets.token_hex(16)
    config.write_text(
        "model_list:\n  - model_name: sonnet\n    litellm_params:\n"
        f"      model: openai/fake-model\n      api_base: {fake.url}/v1\n"
        f"      api_key: {FAKE_KEY}\n"
        f"general_settings:\n  master_key: {master}\n"
    )
    # LiteLLM's CLI cannot report a port-0 bind: take a free port and hand it over.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (work / "proxy.log").open("w")
    proxy = subprocess.Popen(
        [
            str(_peers.litellm_executable()),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=work,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + "/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"LiteLLM did not start; see {work / 'proxy.log'}")
            time.sleep(0.5)
        headers = {"authorization": f"Bearer {master}"}
        yield Target("litellm", base + "/v1/chat/completions", headers, "sonnet", proxy.pid)
    finally:
        proxy.terminate()
        try:
            proxy.wait(15)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def litellm_version() -> str:
    python = _peers.litellm_executable().parent / "python"
    script = "from importlib.metadata import version; print(version('litellm'))"
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="non-streamed per target")
    parser.add_argument("--stream-requests", type=int, default=100, help="streamed per target")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--token-ms", type=float, default=2.0)
    parser.add_argument("--first-token-ms", type=float, default=20.0)
    parser.add_argument("--fsync", default="always", choices=["always", "interval", "never"])
    parser.add_argument("--no-litellm", action="store_true", help="direct and millstream only")
    args = parser.parse_args()

    with ExitStack() as stack:
        fake = stack.enter_context(fake_provider(args))
        targets = [
            Target(
                "direct",
                fake.url + "/v1/chat/completions",
                {"authorization": f"Bearer {FAKE_KEY}"},
                "fake-model",
                fake.process.pid,
            ),
            stack.enter_context(millstream(fake, args)),
        ]
        if not args.no_litellm:
            targets.append(stack.enter_context(litellm(fake)))
        rows = asyncio.run(interleaved(targets, args.requests, args.stream_requests, args.tokens))
        failures: dict[str, list[str]] = {}
        for target in targets:
            errors, rss, seconds, reasons = asyncio.run(
                concurrent(target, args.streams, args.tokens)
            )
            rows[target.name].update(errors=errors, rss=rss, seconds=seconds)
            failures[target.name] = reasons

    direct = rows["direct"]
    print(
        f"LLM gateway benchmark: {args.requests} non-streamed and {args.stream_requests} "
        f"streamed requests per target, interleaved; {args.streams} concurrent streams; "
        f"provider: first token {args.first_token_ms:g} ms, {args.tokens} tokens "
        f"{args.token_ms:g} ms apart; millstream --fsync {args.fsync}"
        + ("" if args.no_litellm else f"; LiteLLM {litellm_version()}")
    )
    print(
        "| target | p50 ms | p99 ms | added p50 | added p99 | CPU ms/request | TTFT p50 | TTFT p99 "
        f"| inter-token p50 | inter-token p99 | failed of {args.streams} | peak RSS MiB "
        f"| {args.streams} streams s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50'] - direct['p50']:+.2f} "
            f"| {r['p99'] - direct['p99']:+.2f} | {r['cpu']:.2f} | {r['ttft50']:.2f} "
            f"| {r['ttft99']:.2f} "
            f"| {r['gap50']:.2f} | {r['gap99']:.2f} | {int(r['errors'])} | {r['rss']:.0f} "
            f"| {r['seconds']:.1f} |"
        )
    for name, reasons in failures.items():
        for reason in reasons:
            print(f"{name}: failed stream: {reason}")
    if "litellm" in rows:
        ours = rows["millstream"]["p50"] - direct["p50"]
        theirs = rows["litellm"]["p50"] - direct["p50"]
        ttft_ours = rows["millstream"]["ttft50"] - direct["ttft50"]
        ttft_theirs = rows["litellm"]["ttft50"] - direct["ttft50"]
        print(
            f"added p50: millstream {ours:.2f} ms, LiteLLM {theirs:.2f} ms "
            f"(LiteLLM adds {theirs / max(ours, 1e-6):.1f}x); added TTFT p50: millstream "
            f"{ttft_ours:.2f} ms, LiteLLM {ttft_theirs:.2f} ms"
        )


if __name__ == "__main__":
    main()
