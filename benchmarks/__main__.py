"""``python -m benchmarks [--quick]``: every server, every scenario, one table with ratios.

``make bench`` runs the full set (under 15 minutes); ``make bench-quick`` the quick one (under
3). Results go to ``benchmarks/results/`` as JSON and Markdown unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

import benchmarks.scenarios  # noqa: F401  (registers every scenario)
from benchmarks import _report
from benchmarks._harness import Plan, run
from benchmarks._model import REGISTRY, Mode
from benchmarks._servers import REPO, SERVERS, SUITES

__all__ = ["main"]


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller work, under 3 minutes")
    size.add_argument("--smoke", action="store_true", help="tiny work: checks the harness runs")
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="durable-streams",
        help="which comparison: the Durable Streams servers, or the dual-mode SSE apps",
    )
    parser.add_argument("--servers", type=_names, default=None, help=f"of {','.join(SERVERS)}")
    parser.add_argument("--scenarios", type=_names, default=[], help="a subset, by name")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--no-write", action="store_true", help="print only; write no files")
    parser.add_argument("--list", action="store_true", help="list servers and scenarios")
    args = parser.parse_args(argv)
    suite_servers = [name for name, spec in SERVERS.items() if spec.suite == args.suite]
    if args.servers is None:
        args.servers = suite_servers
    console = Console(width=None if sys.stdout.isatty() else 240)

    if args.list:
        for spec in SERVERS.values():
            console.print(
                f"server  {spec.name:24} {spec.label}  ({', '.join(spec.endpoints)}; {spec.suite})"
            )
        for protocol, by_name in REGISTRY.items():
            for name, scenario in by_name.items():
                console.print(f"{protocol:16} {name:22} {scenario.title}")
        return 0
    unknown = [s for s in args.servers if s not in SERVERS]
    known_scenarios = {name for by_name in REGISTRY.values() for name in by_name}
    unknown += [s for s in args.scenarios if s not in known_scenarios]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)} (see --list)")

    mode: Mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = Plan(mode, [SERVERS[s] for s in args.servers], frozenset(args.scenarios), args.suite)

    def progress(server: str, scenario: str, result: dict[str, Any]) -> None:
        if result.get("status") == "ok":
            values = ", ".join(f"{k}={v:g}" for k, v in result["values"].items())
            cpu = f"load generator {result['loadgen_cpu']:.0%}, server {result['server_cpu']:.0%}"
            console.print(
                f"  {server:18} {scenario:22} {values}  [dim]({cpu}; {result['elapsed_s']} s)[/]"
            )
        else:
            console.print(
                f"  {server:18} {scenario:22} [red]{result.get('status')}:[/] "
                f"{str(result.get('failure'))[:200]}"
            )

    console.print(f"[bold]millstream benchmarks[/] ({mode}): {', '.join(args.servers)}")
    doc = run(plan, progress)
    console.print()
    _report.print_table(doc, console)
    if not args.no_write:
        command = "python -m benchmarks" + {"quick": " --quick", "smoke": " --smoke"}.get(mode, "")
        if args.suite != "durable-streams":
            command += f" --suite {args.suite}"
        if args.servers != suite_servers:
            command += f" --servers {','.join(args.servers)}"
        if args.scenarios:
            command += f" --scenarios {','.join(args.scenarios)}"
        json_path, md_path = _report.write(doc, args.out, command)
        console.print(f"Wrote {json_path} and {md_path.name}")
    ran = [r for results in doc["results"].values() for r in results.values()]
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(main())
