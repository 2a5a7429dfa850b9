"""`millstream serve` as a real process: its startup line, --help, and a graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx

from servers import REPO, millstream_server


def test_help_documents_fsync_risks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "millstream", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    for word in ("--fsync", "always", "interval", "never", "power loss", "--max-body-size"):
        assert word in result.stdout


def test_sigterm_ends_live_readers_and_exits_zero() -> None:
    with millstream_server("--memory", "--no-subscriptions", "--long-poll-timeout", "30") as server:
        announced = [line for line in server.output if line.startswith("millstream listening")]
        assert server.kafka
        assert announced == [
            f"millstream listening on {server.url} and kafka://{server.kafka} "
            "(store: memory (nothing survives a restart))\n"
        ]
        url = f"{server.url}/v1/stream/shutdown"
        tail = httpx.put(url, headers={"Content-Type": "text/plain"}).headers["stream-next-offset"]
        results: dict[str, object] = {}
        sse_open = threading.Event()

        def long_poll() -> None:
            response = httpx.get(url, params={"offset": tail, "live": "long-poll"}, timeout=20)
            results["long-poll"] = response.status_code

        def sse() -> None:
            with httpx.stream(
                "GET", url, params={"offset": tail, "live": "sse"}, timeout=20
            ) as response:
                sse_open.set()
                results["sse"] = response.read()

        readers = [threading.Thread(target=long_poll), threading.Thread(target=sse)]
        for reader in readers:
            reader.start()
        assert sse_open.wait(5)
        time.sleep(0.3)  # let the long-poll park too
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(10)
        for reader in readers:
            reader.join(5)
        assert code == 0, "".join(server.output)
        assert time.monotonic() - started < 5
        assert results["long-poll"] == 204
        body = results["sse"]
        assert isinstance(body, bytes)
        assert body.count(b"event: control") == 2  # the first, and the last one at shutdown
        assert body.endswith(b"\n\n")
