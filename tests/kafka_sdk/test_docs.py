"""Every Python example in docs/kafka-sdk.md (and the README's "Kafka SDK" section) runs, in order,
against a fresh ``millstream serve``
(its Kafka door and HTTP admin API stand in for ``localhost:9092`` and ``localhost:4437``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .brokers import REPO, Broker, millstream_kafka

DOC = REPO / "docs" / "kafka-sdk.md"
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.fixture(scope="module")
def fresh_millstream() -> Iterator[Broker]:
    with millstream_kafka() as broker:
        yield broker


def test_every_python_example_runs(
    fresh_millstream: Broker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STREAMLINE_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("STREAMLINE_HTTP_URL", raising=False)
    blocks = FENCE.findall(DOC.read_text())
    assert len(blocks) >= 10
    for number, block in enumerate(blocks):
        code = block.replace("localhost:9092", fresh_millstream.bootstrap).replace(
            "http://localhost:4437", fresh_millstream.http_url or ""
        )
        namespace = {"__name__": "__main__"}
        exec(compile(code, f"<docs/kafka-sdk.md python block {number}>", "exec"), namespace)
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Kafka SDK\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    [example] = FENCE.findall(section)
    code = example.replace("localhost:9092", fresh_millstream.bootstrap)
    exec(compile(code, "<README.md Kafka SDK>", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert "b'{\"user\":1}'" in printed
    assert "stored at events[" in printed
    assert "Cluster: millstream, Brokers: 1" in printed
    assert "Total lag: 1" in printed
    assert "Check that the server is running" in printed
