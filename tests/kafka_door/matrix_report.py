"""The client matrix as a table: what each cell test of ``test_matrix.py`` ended as.

``conftest.py`` feeds every report of a test marked ``kafka_matrix`` to ``record`` and prints
``render`` in the terminal summary: one row per scenario, one column per client, each cell
pass (with a measured note, if the test left one), FAIL, n/a (the client has no way to do it)
or skip (left out of that client's smaller set), the reasons as numbered notes under the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

__all__ = ["CELLS", "record", "render"]

_RANK = {"pass": 0, "skip": 1, "n/a": 1, "FAIL": 2}


@dataclass
class Outcome:
    status: str
    detail: str = ""  # the reason of a skip or n/a, the error of a failure
    note: str = ""  # shown in the cell itself (a measurement)


CELLS = pytest.StashKey[dict[tuple[str, str], Outcome]]()


def record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Keep the worst outcome of the cell's setup, call and teardown."""
    params = item.callspec.params
    key = (params["client_name"], params["scenario_name"])
    cells = item.config.stash.setdefault(CELLS, {})
    if report.passed:
        if report.when != "call":
            return
        outcome = Outcome("pass", note=str(dict(report.user_properties).get("matrix_note", "")))
    elif report.skipped:
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith("n/a: "):
            outcome = Outcome("n/a", reason.removeprefix("n/a: "))
        else:
            outcome = Outcome("skip", reason)
    else:
        error = call.excinfo.exconly() if call.excinfo is not None else str(report.longrepr)
        first = error.strip().splitlines()[0] if error.strip() else "failed"
        where = "" if report.when == "call" else f" (in {report.when})"
        outcome = Outcome("FAIL", f"{first[:160]}{where}")
    previous = cells.get(key)
    if previous is None or _RANK[outcome.status] >= _RANK[previous.status]:
        cells[key] = outcome


def render(config: pytest.Config) -> list[str]:
    """The table and its notes; nothing when no cell ran."""
    cells = config.stash.get(CELLS, {})
    if not cells:
        return []
    clients = list(dict.fromkeys(client for client, _ in cells))
    scenarios = list(dict.fromkeys(scenario for _, scenario in cells))
    notes: dict[str, int] = {}
    rows = [["scenario", *clients]]
    for scenario in scenarios:
        row = [scenario]
        for client in clients:
            outcome = cells.get((client, scenario))
            if outcome is None:
                row.append("")
                continue
            text = outcome.status + (f" {outcome.note}" if outcome.note else "")
            if outcome.detail:
                note = f"{client}: {outcome.detail}"
                text += f" [{notes.setdefault(note, len(notes) + 1)}]"
            row.append(text)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts = {status: 0 for status in _RANK}
    for outcome in cells.values():
        counts[outcome.status] += 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines.insert(0, f"tests/kafka_door/test_matrix.py: {summary}")
    lines += [f"[{n}] {note}" for note, n in notes.items()]
    return lines
