"""``millstream serve`` as operators run it: secure by default, settings from flags, variables and
a TOML file (and their precedence), tokens managed from the CLI while it runs, JSON logs with
request ids, and what ``/metrics`` reports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from servers import ServerProcess, millstream_argv, millstream_server, wait_until

pytestmark = pytest.mark.timeout(180)


def _millstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "millstream", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


# -- secure by default ----------------------------------------------------------------------


def test_beyond_loopback_without_tokens_it_refuses_to_start() -> None:
    done = _millstream("serve", "--memory", "--host", "0.0.0.0", "--port", "0", "--kafka-port", "0")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in done.stderr
    assert "millstream tokens create" in done.stderr
    assert "--require-auth" in done.stderr
    assert "--insecure" in done.stderr
    assert "listening" not in done.stdout


@pytest.mark.parametrize(
    ("flag", "note"), [("--insecure", "INSECURE"), ("--require-auth", "tokens required")]
)
def test_beyond_loopback_it_starts_with_tokens_or_when_told_insecure(flag: str, note: str) -> None:
    process = subprocess.Popen(
        [*millstream_argv("--memory", "--no-llm", "--host", "0.0.0.0", flag)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = ""
        for line in process.stdout:
            if "listening" in line:
                break
        assert line.startswith("millstream listening on http://0.0.0.0:")
        assert note in line
    finally:
        process.terminate()
        process.wait(15)
        if process.stdout is not None:
            process.stdout.close()


def test_loopback_runs_open_as_before(tmp_path: Path) -> None:
    from .conftest import issue_tokens

    token = issue_tokens(tmp_path, {"reader": ["read:a/"]})["reader"]
    with millstream_server("--data-dir", str(tmp_path), "--no-llm") as server:
        assert "tokens required" not in "".join(server.output)
        assert httpx.put(f"{server.url}/v1/stream/open").status_code == 201
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        # credentials that are not valid tokens change nothing on an open node (a client may
        # carry another service's); a valid token's scopes apply
        for other in ("Bearer ms_nope", "Bearer abc", "Basic Zm9vOmJhcg=="):
            ignored = httpx.get(f"{server.url}/v1/stream/open", headers={"Authorization": other})
            assert ignored.status_code == 200
        scoped = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/v1/stream/open", headers=scoped).status_code == 403


# -- configuration --------------------------------------------------------------------------


def test_settings_precedence_is_command_line_then_environment_then_file(tmp_path: Path) -> None:
    config = tmp_path / "millstream.toml"
    config.write_text(
        'port = 1111\nkafka-port = 2222\nlong_poll_timeout = 3.5\nlog_format = "json"\n'
        'anthropic_api_key = "sk-from-file"\n'
    )
    done = _millstream(
        "serve", "--config", str(config), "--port", "3333", "--print-config",
        env={"MILLSTREAM_PORT": "4444", "MILLSTREAM_KAFKA_PORT": "5555"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = {line.split("=")[0].strip(): line for line in done.stdout.splitlines()}
    assert lines["port"].split("#")[0].split("=")[1].strip() == "3333"
    assert lines["port"].endswith("# command line")
    assert "5555" in lines["kafka_port"]
    assert lines["kafka_port"].endswith("# environment")
    assert "3.5" in lines["long_poll_timeout"]
    assert lines["long_poll_timeout"].endswith("# config file")
    assert lines["log_format"].endswith("# config file")
    assert "sk-from-file" not in done.stdout
    assert '"********"' in lines["anthropic_api_key"]
    assert lines["fsync"].endswith("# default")
    # the output is itself a valid config file with the same settings
    again = tmp_path / "again.toml"
    again.write_text(done.stdout)
    second = _millstream("serve", "--config", str(again), "--print-config")
    assert second.returncode == 0, second.stderr
    assert "3333" in second.stdout
    config.write_text("prot = 1\n")
    typo = _millstream("serve", "--config", str(config), "--print-config")
    assert typo.returncode == 2
    assert "unknown setting 'prot'" in typo.stderr


def test_a_server_runs_from_a_config_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(
        "[serve]\nmemory = true\nkafka = false\nlong-poll-timeout = 0.5\nllm = false\n"
    )
    env = {**os.environ, "MILLSTREAM_CONFIG": str(config), "MILLSTREAM_PORT": "0"}
    server = ServerProcess([sys.executable, "-m", "millstream", "serve"], env=env)
    try:
        assert "kafka://" not in "".join(server.output)
        url = f"{server.url}/v1/stream/cfg"
        tail = httpx.put(url).headers["stream-next-offset"]
        started = time.monotonic()
        response = httpx.get(url, params={"offset": tail, "live": "long-poll"}, timeout=10)
        assert response.status_code == 204
        assert time.monotonic() - started < 5  # 0.5 s from the file, not the 30 s default
    finally:
        server.terminate()


def test_serve_needs_both_tls_files() -> None:
    done = _millstream("serve", "--memory", "--tls-cert", __file__)
    assert done.returncode == 2
    assert "--tls-cert and --tls-key go together" in done.stderr


# -- tokens from the CLI, while the server runs ----------------------------------------------


def test_tokens_are_managed_from_the_cli_while_the_server_runs(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = _millstream(
        "tokens", "create", "--name", "admin", "--scope", "admin:", "--data-dir", data
    )
    assert created.returncode == 0, created.stderr
    admin = created.stdout.splitlines()[-1]
    assert admin.startswith("ms_")
    with millstream_server("--data-dir", data, "--require-auth", "--no-llm") as server:
        made = _millstream(
            "tokens", "create", "--name", "chat-app", "--scope", "read:chat/",
            "--scope", "write:chat/", "--data-dir", data,
        )  # fmt: skip
        token = made.stdout.splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.put(f"{server.url}/v1/stream/chat/1", headers=headers).status_code == 201
        assert httpx.put(f"{server.url}/v1/stream/other", headers=headers).status_code == 403
        listed = _millstream("tokens", "list", "--data-dir", data)
        assert "chat-app" in listed.stdout
        assert "read:chat/ write:chat/" in listed.stdout
        assert token.rsplit("_", 1)[1] not in listed.stdout
        duplicate = _millstream(
            "tokens", "create", "--name", "chat-app", "--scope", "read:x", "--data-dir", data
        )
        assert duplicate.returncode == 1
        assert "exists" in duplicate.stderr
        bad = _millstream(
            "tokens", "create", "--name", "x", "--scope", "read:a/../b", "--data-dir", data
        )
        assert bad.returncode == 2
        assert "'..' segment" in bad.stderr
        revoked = _millstream("tokens", "revoke", token, "--data-dir", data)
        assert revoked.returncode == 0
        assert wait_until(
            lambda: (
                httpx.head(f"{server.url}/v1/stream/chat/1", headers=headers).status_code == 401
            ),
            10,
        )
        admin_headers = {"Authorization": f"Bearer {admin}"}
        assert httpx.head(f"{server.url}/v1/stream/chat/1", headers=admin_headers).is_success


# -- logs -----------------------------------------------------------------------------------


def test_json_logs_carry_request_ids(tmp_path: Path) -> None:
    with millstream_server(
        "--memory", "--no-llm", "--require-auth", "--log-format", "json", "--access-log"
    ) as server:
        token = next(line.split()[-1] for line in server.output if line.startswith("admin token"))
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "req-42"}
        assert httpx.put(f"{server.url}/v1/stream/logged", headers=headers).status_code == 201
        refused = httpx.get(f"{server.url}/v1/stream/logged", headers={"X-Request-Id": "bad-7"})
        assert refused.status_code == 401
        assert refused.headers["x-request-id"] == "bad-7"
        anonymous = httpx.get(f"{server.url}/v1/stream/logged")
        generated = anonymous.headers["x-request-id"]

        def records() -> list[dict[str, object]]:
            out = []
            for line in server.output:
                if line.startswith("{"):
                    out.append(orjson.loads(line))
            return out

        assert wait_until(lambda: len(records()) >= 4, 10)
        by_id = {r.get("request_id"): r for r in records()}
        access = by_id["req-42"]
        assert access["logger"] == "millstream.access"
        assert access["method"] == "PUT"
        assert access["status"] == 201
        assert access["path"] == "/v1/stream/logged"
        assert isinstance(access["duration_ms"], float)
        refusal = next(
            r for r in records() if r.get("request_id") == "bad-7" and r["level"] == "warning"
        )
        assert refusal["reason"] == "missing_token"
        assert refusal["door"] == "http"
        assert generated in by_id


# -- metrics --------------------------------------------------------------------------------


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_report_both_doors_the_store_groups_and_the_llm_gateway(
    tmp_path: Path,
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    with millstream_server("--data-dir", str(tmp_path), "--llm-offline") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            await client.put("/v1/stream/m", headers={"Content-Type": "text/plain"})
            for _ in range(3):
                await client.post(
                    "/v1/stream/m", content=b"12345", headers={"Content-Type": "text/plain"}
                )
            producer = AIOKafkaProducer(bootstrap_servers=server.kafka)
            await producer.start()
            try:
                for i in range(5):
                    await producer.send_and_wait("metered", b"r%d" % i)
            finally:
                await producer.stop()
            consumer = AIOKafkaConsumer(
                "metered",
                bootstrap_servers=server.kafka,
                group_id="lagging",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                for _ in range(2):
                    await consumer.getone()
                from aiokafka.structs import OffsetAndMetadata, TopicPartition

                await consumer.commit({TopicPartition("metered", 0): OffsetAndMetadata(2, "")})
            finally:
                await consumer.stop()
            keys = _millstream("keys", "create", "--project", "acme", "--data-dir", str(tmp_path))
            key = keys.stdout.splitlines()[-1]
            chat = await client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"messages": [{"role": "user", "content": "hello there"}], "model": "haiku"},
            )
            assert chat.status_code == 200, chat.text
            for _ in range(100):  # the gateway settles usage after the answer
                text = (await client.get("/metrics")).text
                if "millstream_llm_tokens_total{" in text:
                    break
                await asyncio.sleep(0.1)
    samples = _samples(text)
    assert samples['millstream_http_requests_total{route="append",status="204"}'] == 3
    assert samples['millstream_append_bytes_total{door="http"}'] == 15
    assert samples['millstream_appends_total{door="kafka"}'] == 5
    assert samples["millstream_kafka_records_produced_total"] == 5
    assert samples['millstream_kafka_requests_total{api="Produce"}'] == 5
    assert samples['millstream_kafka_request_duration_seconds_count{api="Produce"}'] == 5
    assert samples['millstream_appends_total{door="http"}'] == 3
    assert samples['millstream_append_bytes_total{door="kafka"}'] > 10  # five batches
    assert samples["millstream_http_live_readers"] == 0
    assert samples['millstream_http_request_duration_seconds_count{route="append"}'] == 3
    assert (
        samples['millstream_consumer_group_lag{group="lagging",partition="0",topic="metered"}'] == 3
    )
    assert samples["millstream_store_fsync_duration_seconds_count"] >= 1
    assert samples["millstream_store_group_commit_size_count"] >= 1
    assert (
        samples['millstream_store_group_commit_size_bucket{le="+Inf"}']
        == samples["millstream_store_group_commit_size_count"]
    )
    tokens = [v for k, v in samples.items() if k.startswith("millstream_llm_tokens_total{")]
    assert tokens
    assert all(v > 0 for v in tokens)
    assert any(
        k.startswith('millstream_llm_cost_usd_total{model="haiku",project="acme"}') for k in samples
    )
    assert "# TYPE millstream_http_request_duration_seconds histogram" in text
    assert "# TYPE millstream_auth_failures_total counter" in text  # none on an open node


def test_serve_defaults_match_the_servers_and_the_cli_imports_no_server_code() -> None:
    from millstream.cli import _serve
    from millstream.server.http import DEFAULT_MAX_BODY_SIZE
    from millstream.server.kafka import DEFAULT_MAX_REQUEST_SIZE

    assert _serve.DEFAULT_MAX_BODY_SIZE == DEFAULT_MAX_BODY_SIZE
    assert _serve.DEFAULT_MAX_REQUEST_SIZE == DEFAULT_MAX_REQUEST_SIZE
    probe = (
        "import sys, millstream.cli; "
        "loaded = [m for m in ('uvicorn', 'millstream.log', 'millstream.server', "
        "'prometheus_client', 'aiohttp') if m in sys.modules]; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_otel_traces_requests_of_both_doors() -> None:
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "ms-test"}
    server = ServerProcess(millstream_argv("--memory", "--no-llm", "--otel"), env=env)
    try:
        line = next(line for line in server.output if "listening" in line)
        assert "tracing requests (OpenTelemetry; HTTP fast path off)" in line
        created = httpx.put(f"{server.url}/v1/stream/traced", headers={"X-Request-Id": "t-1"})
        assert created.status_code == 201
        from kafka_door.wire import Wire
        from millstream.server.kafka import codec

        with Wire(server.kafka) as wire:
            wire.call(codec.MetadataRequest(topics=[]), 9)
        text = lambda: "".join(server.output)  # noqa: E731
        assert wait_until(lambda: '"name": "kafka Metadata"' in text(), 10)
        assert '"name": "PUT /v1/stream/traced"' in text()
        assert '"millstream.request_id": "t-1"' in text()
        assert '"http.response.status_code": 201' in text()
        assert '"service.name": "ms-test"' in text()
    finally:
        server.terminate()
