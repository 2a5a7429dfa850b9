"""Two more independent clients: kcat (librdkafka 2.0, Debian) and KafkaJS (pure JavaScript,
``node/kafkajs-scenario.mjs``), each through a smaller set: produce with keys, consume from the
beginning, metadata, and a consumer group."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from servers import NODE_DIR, ServerProcess

pytestmark = pytest.mark.timeout(120)


def kcat(bootstrap: str, *args: str, data: str | None = None) -> str:
    assert shutil.which("kcat"), "kcat is missing: tools/ensure-debian-packages installs it"
    done = subprocess.run(
        ["kcat", "-b", bootstrap, *args],
        input=data,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_produces_consumes_lists_and_joins_a_group(bootstrap: str, topic_name: str) -> None:
    kcat(bootstrap, "-t", topic_name, "-K:", "-P", data="a:1\nb:2\nc:3\n")
    assert kcat(
        bootstrap, "-t", topic_name, "-C", "-o", "beginning", "-e", "-f", "%o %k %s\\n"
    ) == ("0 a 1\n1 b 2\n2 c 3\n")
    listing = kcat(bootstrap, "-L", "-t", topic_name)
    assert f'topic "{topic_name}" with 1 partitions' in listing
    grouped = kcat(
        bootstrap, "-G", f"{topic_name}-g", topic_name, "-o", "beginning", "-e", "-f", "%p %o %s\\n"
    )
    assert grouped == "0 0 1\n0 1 2\n0 2 3\n"


def test_kafkajs_scenario(kafka_server: ServerProcess, topic_name: str) -> None:
    done = subprocess.run(
        ["node", "kafkajs-scenario.mjs", kafka_server.kafka, topic_name],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["created"] is True
    assert topic_name in result["listed"]
    assert all(r["errorCode"] == 0 for r in result["sent"])
    seen = result["seen"]
    assert sorted(int(m["n"]) for m in seen) == list(range(20))
    for message in seen:
        number = int(message["n"])
        assert (message["key"], message["value"]) == (f"k{number % 4}", f"v{number}")
    for partition in (0, 1):
        offsets = [m["offset"] for m in seen if m["partition"] == partition]
        assert offsets == list(range(len(offsets)))
    committed = {int(p["partition"]): int(p["offset"]) for p in result["offsets"][0]["partitions"]}
    assert committed == {p: len([m for m in seen if m["partition"] == p]) for p in (0, 1)}
    assert f"{topic_name}-group" in [g["groupId"] for g in result["groups"]["groups"]]
