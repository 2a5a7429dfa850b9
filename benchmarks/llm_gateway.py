"""LLM gateway benchmark: the same fake OpenAI-compatible provider called directly, through
millstream's gateway, and through the LiteLLM proxy (if ``benchmarks/.work/litellm-venv``
exists: ``python -m venv benchmarks/.work/litellm-venv && .../pip install 'litellm[proxy]'``).

``python -m benchmarks.llm_gateway [--requests 300] [--streams 1000]``. Prints added latency
p50/p99 over direct for non-streamed requests, time to first token and inter-token delay for
streamed ones, and 1,000 concurrent streams (errors, server RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import ServerProcess  # noqa: E402

FAKE_KEY = "sk-bench"
LITELLM = REPO / "benchmarks" / ".work" / "litellm-venv" / "bin" / "litellm"
BODY = {"model": "sonnet", "messages": [{"role": "user", "content": "benchmark prompt"}]}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def unary(url: str, headers: dict[str, str], model: str, n: int) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        for _ in range(n):
            t = time.perf_counter()
            r = await http.post(url, json={**BODY, "model": model})
            r.raise_for_status()
            out.append((time.perf_counter() - t) * 1000)
    return out


async def streamed(
    url: str, headers: dict[str, str], model: str, n: int
) -> tuple[list[float], list[float]]:
    ttft: list[float] = []
    gaps: list[float] = []
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        for _ in range(n):
            t = time.perf_counter()
            last = None
            async with http.stream("POST", url, json={**BODY, "model": model, "stream": True}) as r:
                async for line in r.aiter_lines():
                    if '"content":"w' not in line.replace(" ", ""):
                        continue
                    now = time.perf_counter()
                    if last is None:
                        ttft.append((now - t) * 1000)
                    else:
                        gaps.append((now - last) * 1000)
                    last = now
    return ttft, gaps


async def concurrent(url: str, headers: dict[str, str], model: str, n: int) -> int:
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(timeout=120, headers=headers, limits=limits) as http:

        async def one() -> bool:
            try:
                async with http.stream(
                    "POST", url, json={**BODY, "model": model, "stream": True}
                ) as r:
                    body = b"".join([c async for c in r.aiter_bytes()])
                return r.status_code == 200 and b"[DONE]" in body
            except httpx.HTTPError:
                return False

        results = await asyncio.gather(*(one() for _ in range(n)))
    return results.count(False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    fake = ServerProcess(
        [sys.executable, str(REPO / "tests/llm/fake_provider.py"), "--openai-key", FAKE_KEY]
    )
    procs = [fake]
    try:
        httpx.post(fake.url + "/_fake/config", json={"tokens": 16, "token_delay": 0.002})
        data = tempfile.mkdtemp(prefix="llm-bench-")
        env_argv = [
            sys.executable,
            str(REPO / "tests/llm/gateway_server.py"),
            "--data-dir",
            data,
            "--llm-rpm",
            "0",
            "--bootstrap-key",
            "bench",
            "--llm-model",
            "sonnet=openai:fake-model",
        ]
        import os

        os.environ.update(OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=fake.url + "/v1")
        gateway = ServerProcess(env_argv)
        procs.append(gateway)
        key = next(x.split("key: ")[1].strip() for x in gateway.output if x.startswith("key: "))
        targets = {
            "direct": (
                fake.url + "/v1/chat/completions",
                {"authorization": f"Bearer {FAKE_KEY}"},
                "fake-model",
                fake.process.pid,
            ),
            "millstream": (
                gateway.url + "/v1/chat/completions",
                {"authorization": f"Bearer {key}"},
                "sonnet",
                gateway.process.pid,
            ),
        }
        if LITELLM.exists():
            config = Path(data) / "litellm.yaml"
            config.write_text(
                "model_list:\n  - model_name: sonnet\n    litellm_params:\n"
                f"      model: openai/fake-model\n      api_base: {fake.url}/v1\n"
                f"      api_key: {FAKE_KEY}\n"
            )
            port = 4000 + os.getpid() % 1000
            lite = subprocess.Popen(
                [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}"
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    if httpx.get(base + "/health/liveliness", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            targets["litellm"] = (base + "/v1/chat/completions", {}, "sonnet", lite.pid)
        rows: dict[str, dict[str, float]] = {}
        for name, (url, headers, model, pid) in targets.items():
            asyncio.run(unary(url, headers, model, 20))  # warm-up
            lat = asyncio.run(unary(url, headers, model, args.requests))
            ttft, gaps = asyncio.run(streamed(url, headers, model, max(20, args.requests // 5)))
            errors = asyncio.run(concurrent(url, headers, model, args.streams))
            rows[name] = {
                "p50": statistics.median(lat),
                "p99": pct(lat, 0.99),
                "ttft50": statistics.median(ttft),
                "gap50": statistics.median(gaps),
                "errors": errors,
                "rss": rss_mib(pid),
            }
        direct = rows["direct"]
        print(f"LLM gateway benchmark, {args.requests} requests, {args.streams} concurrent streams")
        print(
            "| target | p50 ms | p99 ms | added p50 | added p99 | TTFT p50 ms "
            "| inter-token p50 ms | errors/1000 streams | RSS MiB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in rows.items():
            print(
                f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50'] - direct['p50']:.2f} | "
                f"{r['p99'] - direct['p99']:.2f} | {r['ttft50']:.2f} | {r['gap50']:.2f} | "
                f"{int(r['errors'])} | {r['rss']:.0f} |"
            )
        if "litellm" in rows:
            lite_added = rows["litellm"]["p50"] - direct["p50"]
            ms_added = rows["millstream"]["p50"] - direct["p50"]
            ratio = lite_added / max(ms_added, 1e-9)
            print(
                f"added p50 ms: litellm {lite_added:.2f}, millstream {ms_added:.2f} ({ratio:.2f}x)"
            )
        if "litellm" in targets:
            lite.terminate()
            lite.wait(10)
    finally:
        for proc in procs:
            proc.terminate()


if __name__ == "__main__":
    main()
