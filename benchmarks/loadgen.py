"""The load generator: one scenario against one running server, in a process of its own.

``python -m benchmarks.loadgen --protocol P --scenario S --mode quick --target URL --server-pid N``
prints one JSON object on stdout: status, figures, checked requests, errors (with samples),
and the CPU share of this process and of the server over the measured phases. It runs apart
from the harness and the server so that what is measured is the server, and reports its own
CPU so a reader can see when it is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from benchmarks._model import REGISTRY, Context, Mode, Scenario, ScenarioFailed

__all__ = ["main", "run_scenario"]


async def run_scenario(scenario: Scenario, ctx: Context, timeout: float) -> dict[str, Any]:
    """Run ``scenario`` within ``timeout`` seconds; the result is ``ok`` only with zero errors."""
    failure = ""
    values: dict[str, float] = {}
    details: dict[str, Any] = {}
    try:
        outcome = await asyncio.wait_for(scenario.run(ctx), timeout)
        values, details = outcome.values, outcome.details
    except TimeoutError:
        failure = f"did not finish in {timeout:g} s"
    except ScenarioFailed as exc:
        failure = str(exc)
    except Exception as exc:  # a crash in a scenario is reported, not raised past the result
        failure = f"load generator error: {exc!r}"
    tally = ctx.tally
    if not failure and tally.errors:
        failure = f"{tally.errors} of {tally.requests} requests failed"
    if not failure and tally.requests == 0:
        failure = "no request was checked"
    own, server = ctx.meter.shares()
    return {
        "status": "failed" if failure else "ok",
        "failure": failure,
        "values": {} if failure else {k: round(v, 3) for k, v in values.items()},
        "details": details,
        "requests": tally.requests,
        "errors": tally.errors,
        "error_samples": tally.samples,
        "wall_s": round(ctx.meter.wall, 3),
        "loadgen_cpu": round(own, 3),
        "server_cpu": round(server, 3),
    }


def _install_fast_loop() -> str:
    """Use uvloop when it is installed (it is, with uvicorn[standard]); returns the loop name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--mode", choices=("smoke", "quick", "full"), default="quick")
    parser.add_argument("--target", required=True, help="base URL or address of the server")
    parser.add_argument("--server-pid", type=int, default=0, help="for CPU and RSS figures")
    args = parser.parse_args(argv)

    import benchmarks.scenarios  # noqa: F401  (registers every scenario)

    try:
        scenario = REGISTRY[args.protocol][args.scenario]
    except KeyError:
        parser.error(f"no scenario {args.scenario!r} for protocol {args.protocol!r}")
    mode: Mode = args.mode
    loop = _install_fast_loop()
    ctx = Context(
        target=args.target.rstrip("/"), server_pid=args.server_pid, params=scenario.params[mode]
    )
    result = asyncio.run(run_scenario(scenario, ctx, scenario.timeout[mode]))
    result["loop"] = loop
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
