"""One table from a run's results: every figure per server, then millstream's ratio to each peer.

A ratio above 1 always means millstream did better (faster, more throughput, less memory).
A failed scenario shows as failed with its error count, never as a number, and gets no ratio.
The same rows feed the terminal (rich), Markdown and, unchanged, the JSON file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["Row", "markdown", "print_table", "rows", "write"]

_CPU_NOTE = (
    "(n%) after a figure: the load generator's CPU over the measured phase, as a share of one "
    "core; near 100% means the client, not the server, may be the limit."
)


@dataclass(frozen=True, slots=True)
class Row:
    """One figure across servers: cells in server order, then ratios in peer order."""

    label: str
    unit: str
    cells: list[str]
    ratios: list[str]


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(result: dict[str, Any] | None, key: str) -> str:
    if result is None:
        return "n/a"
    if result.get("status") != "ok":
        errors = result.get("errors", 0)
        return f"failed ({errors} errors)" if errors else f"failed ({result.get('failure', '?')})"
    value = result["values"].get(key)
    if value is None:
        return "n/a"
    return f"{_number(value)} ({result.get('loadgen_cpu', 0) * 100:.0f}%)"


def _ratio(subject: dict[str, Any] | None, peer: dict[str, Any] | None, fig: dict[str, Any]) -> str:
    if not subject or not peer or subject.get("status") != "ok" or peer.get("status") != "ok":
        return "–"
    mine, theirs = subject["values"].get(fig["key"]), peer["values"].get(fig["key"])
    if not mine or not theirs:
        return "–"
    ratio = mine / theirs if fig["higher_is_better"] else theirs / mine
    return f"{ratio:.2f}×"


def peers(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(peer, millstream spec it is compared with) for peers that ran with their subject."""
    ran = {name for name, info in doc["servers"].items() if info.get("status") == "ran"}
    return [
        (name, subject)
        for name, info in doc["servers"].items()
        for subject in [info["compare_to"], *info.get("also_compare_to", [])]
        if subject and name in ran and subject in ran
    ]


def rows(doc: dict[str, Any]) -> list[Row]:
    servers = list(doc["servers"])
    pairs = peers(doc)
    out: list[Row] = []
    for by_name in doc["scenarios"].values():
        for name, scenario in by_name.items():
            for fig in scenario["figures"]:
                results = [doc["results"].get(s, {}).get(name) for s in servers]
                ratios = [
                    _ratio(doc["results"][subject].get(name), doc["results"][peer].get(name), fig)
                    for peer, subject in pairs
                ]
                cells = [_cell(r, fig["key"]) for r in results]
                out.append(Row(fig["label"], fig["unit"], cells, ratios))
    return out


def _headers(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    servers = [doc["servers"][s]["label"] for s in doc["servers"]]
    ratios = [f"{subject} ÷ {peer}" for peer, subject in peers(doc)]
    return servers, ratios


def _heading(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    return (
        f"millstream benchmarks ({doc['mode']}), {doc['date']}, "
        f"{m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('cpu', '?')}"
    )


def print_table(doc: dict[str, Any], console: Console) -> None:
    servers, ratios = _headers(doc)
    table = Table(title=_heading(doc), title_justify="left", show_lines=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("unit")
    for label in servers:
        table.add_column(label, justify="right")
    for label in ratios:
        table.add_column(label, justify="right", style="bold")
    for row in rows(doc):
        table.add_row(row.label, row.unit, *row.cells, *row.ratios)
    console.print(table)
    console.print(f"Ratios: above 1× means millstream did better. {_CPU_NOTE}")
    for name, info in doc["servers"].items():
        if info.get("status") != "ran":
            console.print(f"[yellow]{name} did not run:[/] {info.get('reason', '')[:300]}")
    _print_failures(doc, console)


def _print_failures(doc: dict[str, Any], console: Console) -> None:
    for server, results in doc["results"].items():
        for name, result in results.items():
            if result.get("status") != "ok":
                samples = "; ".join(result.get("error_samples") or [])
                console.print(
                    f"[red]{server} / {name}:[/] {result.get('failure')}"
                    + (f" — e.g. {samples}" if samples else "")
                )


def markdown(doc: dict[str, Any], command: str) -> str:
    servers, ratios = _headers(doc)
    header = ["figure", "unit", *servers, *ratios]
    lines = [
        f"## {_heading(doc)}",
        "",
        f"Command: `{command}` ({doc.get('seconds', '?')} s).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
    ]
    lines += ["| " + " | ".join([r.label, r.unit, *r.cells, *r.ratios]) + " |" for r in rows(doc)]
    lines += ["", f"Ratios: above 1× means millstream did better. {_CPU_NOTE}", "", "Versions:", ""]
    lines.append(f"- load generator: {_versions(doc['harness'])}")
    for info in doc["servers"].values():
        if info.get("status") == "ran":
            lines.append(f"- {info['label']}: {_versions(info.get('versions', {}))}")
        else:
            lines.append(f"- {info['label']}: did not run ({info.get('reason', '')[:200]})")
    failures = [
        f"- {server} / {name}: {r.get('failure')}"
        + (f" — e.g. {'; '.join(r['error_samples'])}" if r.get("error_samples") else "")
        for server, results in doc["results"].items()
        for name, r in results.items()
        if r.get("status") != "ok"
    ]
    if failures:
        lines += ["", "Failures:", "", *failures]
    return "\n".join(lines) + "\n"


def _versions(found: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in found.items())


def write(doc: dict[str, Any], directory: Path, command: str) -> tuple[Path, Path]:
    """Write ``<date>-<mode>.json`` and ``.md``, and refresh ``latest-<mode>.{json,md}``
    (``<mode>-<suite>`` for a suite other than the Durable Streams one)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    stamp = doc["date"].replace(":", "").replace("-", "").split("+")[0]
    doc = {**doc, "command": command}
    text_json = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    text_md = markdown(doc, command)
    kind = doc["mode"]
    if doc.get("suite", "durable-streams") != "durable-streams":
        kind += f"-{doc['suite']}"
    written = directory / f"{stamp}-{kind}.json", directory / f"{stamp}-{kind}.md"
    for path, text in zip(written, (text_json, text_md), strict=True):
        path.write_text(text)
        (directory / f"latest-{kind}{path.suffix}").write_text(text)
    return written
