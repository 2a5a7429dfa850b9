"""The Python examples of docs/kafka-codec.md, executed as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "kafka-codec.md"
DOOR_DOC = DOC.with_name("kafka.md")


def test_docs_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


def test_docs_table_of_versions_is_the_supported_table() -> None:
    from millstream.server.kafka import codec

    rows = re.findall(r"^\| (\w+) \((\d+)\) \| (\d+)–(\d+) \|", DOC.read_text(), re.M)
    table = {int(key): (int(low), int(high)) for _, key, low, high in rows}
    assert table == {int(k): v for k, v in codec.SUPPORTED_VERSIONS.items()}


def test_the_door_docs_list_the_supported_versions() -> None:
    """docs/kafka.md's "APIs and versions" table says what ApiVersions advertises."""
    from millstream.server.kafka import codec

    rows = re.findall(
        r"^\| (\d+(?:, \d+)?) \| \w+(?:, \w+)? \| (\d+)–(\d+)", DOOR_DOC.read_text(), re.M
    )
    table = {int(key): (int(low), int(high)) for key, low, high in rows}
    assert table == {int(k): v for k, v in codec.SUPPORTED_VERSIONS.items() if k not in (17, 36)}
