"""``millstream`` in someone else's application: the built wheel installed into a fresh virtual
environment next to the latest FastAPI and uvicorn, from the package registry.

- The base install is the SDK: the client works against a server, nothing of the server is
  installed, and ``millstream serve`` says what to install.
- With the ``server`` extra, the HTTP app mounts in a FastAPI app served by the latest uvicorn
  and ``serve`` runs; with an older uvicorn (0.30, the lowest the extra allows) ``serve`` falls
  back to uvicorn's own protocol and says so on its startup line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from servers import REPO, ServerProcess, millstream_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

_CLIENT = """
import sys
from millstream import DurableStream, stream
url = sys.argv[1] + "/v1/stream/from-the-wheel"
with DurableStream.create(url, content_type="application/json") as handle:
    handle.append({"n": 1})
with stream(url, live=False) as res:
    assert res.read_json() == [{"n": 1}], "read back"
print("client ok")
"""

_MOUNTED = """
import contextlib, sys
import httpx, uvicorn, fastapi
from fastapi import FastAPI
from millstream.log import MemoryStore
from millstream.server.http import create_app

streams = create_app(MemoryStore())

@contextlib.asynccontextmanager
async def lifespan(app):
    await streams.startup()
    yield
    await streams.shutdown()

app = FastAPI(lifespan=lifespan)
app.mount("/streams", streams)

@app.get("/hello")
async def hello():
    return {"hello": "world"}

if __name__ == "__main__":
    print("fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out, REPO)
    (built,) = out.glob("millstream-*.whl")
    return built


def _venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin" / "python"


def test_the_wheel_in_a_fresh_environment(wheel: Path, tmp_path: Path) -> None:
    """One environment, three steps (each pip install is the slow part)."""
    python = _venv(tmp_path / "env")
    _the_base_install_is_the_sdk(python, wheel, tmp_path)
    _the_app_mounts_beside_the_latest_fastapi_and_uvicorn(python, wheel, tmp_path)


def _the_base_install_is_the_sdk(python: Path, wheel: Path, tmp_path: Path) -> None:
    _run(python, "-m", "pip", "install", "-q", wheel)
    installed = _run(python, "-m", "pip", "list", "--format=freeze").lower()
    for server_only in ("uvicorn", "crc32c", "prometheus", "aiohttp", "starlette", "rich"):
        assert server_only not in installed, installed
    script = tmp_path / "client.py"
    script.write_text(_CLIENT)
    with millstream_server("--memory", "--no-llm") as server:
        assert "client ok" in _run(python, script, server.url)
    done = subprocess.run(
        [python, "-m", "millstream", "serve", "--memory"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "pip install 'millstream[server]'" in done.stderr
    assert "uvicorn" in done.stderr
    assert "tail" in _run(python, "-m", "millstream", "--help")  # the client commands work


def _the_app_mounts_beside_the_latest_fastapi_and_uvicorn(
    python: Path, wheel: Path, tmp_path: Path
) -> None:
    _run(python, "-m", "pip", "install", "-q", f"{wheel}[server]", "fastapi", "uvicorn[standard]")
    app = tmp_path / "app.py"
    app.write_text(_MOUNTED)
    port = _free_port()
    process = subprocess.Popen(
        [python, app, str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        script = tmp_path / "client.py"
        script.write_text(_CLIENT)
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/hello")
        assert "client ok" in _run(python, script, f"{base}/streams")
    finally:
        process.terminate()
        process.wait(15)
        assert process.stdout is not None
        process.stdout.close()
    # and `serve` from the same environment: the latest uvicorn is the tested one (fast path)
    serve = ServerProcess(
        [python, "-m", "millstream", "serve", "--memory", "--no-llm", "--port", "0",
         "--kafka-port", "0"],
        env=_clean_env(),
    )  # fmt: skip
    try:
        assert "client ok" in _run(python, script, serve.url)
    finally:
        serve.terminate()
    # an uvicorn the fast path was not tested with: serve falls back and says so
    _run(python, "-m", "pip", "install", "-q", "uvicorn[standard]==0.30.6")
    older = ServerProcess(
        [python, "-m", "millstream", "serve", "--memory", "--no-llm", "--port", "0",
         "--kafka-port", "0"],
        env=_clean_env(),
    )  # fmt: skip
    try:
        line = next(line for line in older.output if "listening" in line)
        assert "HTTP fast path off: uvicorn 0.30.6 is not one it was tested with" in line
        assert "client ok" in _run(python, script, older.url)
    finally:
        older.terminate()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str) -> None:
    import httpx

    from servers import wait_until

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(up, 30)
