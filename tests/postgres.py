"""A real PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

Debian's ``postgresql`` package (tools/debian-packages.txt) provides the binaries under
``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so as root the server
runs as ``nobody`` in a directory handed to it; otherwise as the current user. It listens on
127.0.0.1 on a free port, trusts local connections (a test cluster, gone afterwards), and is
stopped and removed by ``stop()``. One server per test session; ``database()`` gives each test
(or module) a fresh database.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir"]

_USER = "millstream"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, or ``None``."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One throwaway cluster. ``dsn(db)`` connects to a database on it."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package: postgresql)")
        self.bindir = found
        self.root = Path(tempfile.mkdtemp(prefix="millstream-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self._counter = 0
        if self._as_root:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self.root.chmod(0o700)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                _USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "300",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "deadlock_timeout": "100ms",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")
        self.start()

    def _run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            argv = ["runuser", "-u", "nobody", "--", *argv]
        return subprocess.run(
            argv, check=check, capture_output=True, text=True, timeout=120, cwd=self.root
        )

    @property
    def host_dsn(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}"

    def dsn(self, database: str = "postgres") -> str:
        return f"{self.host_dsn}/{database}"

    def start(self) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash-like stop: no checkpoint)."""
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
        )

    def database(self, prefix: str = "t") -> str:
        """Create a fresh empty database; return its DSN."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-A", "-t", "-c", sql, self.dsn(database)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
