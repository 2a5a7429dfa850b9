"""Running a node as a process (``millstream serve``): uvloop, signals, the startup line.

The first SIGTERM or SIGINT stops the node gracefully (``Node.aclose``) and the process exits
0; a second one stops waiting for in-flight requests. A door that cannot listen exits 1; a node
that would listen beyond loopback without requiring tokens (``InsecureBind``), or whose TLS
certificate cannot be loaded, exits 2 with the reason.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from collections.abc import Callable

from millstream.log import Store

from ._node import Node
from ._options import NodeOptions
from ._security import InsecureBind

__all__ = ["run"]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is not on every platform: asyncio's loop works too
        return None
    return uvloop.new_event_loop


def run(store: Store, options: NodeOptions) -> int:
    """Serve ``store`` until SIGTERM/SIGINT; returns the exit status."""
    try:
        node = Node(store, options)
    except (OSError, ssl.SSLError, ValueError, ImportError) as exc:
        print(f"millstream: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(node))


async def _serve(node: Node) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            node.force_exit()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        try:
            await node.start()
        except InsecureBind as exc:
            print(f"millstream: {exc}", file=sys.stderr, flush=True)
            return 2
        except OSError as exc:
            print(f"millstream: cannot start: {exc}", file=sys.stderr, flush=True)
            return 1
        if node.options.bootstrap_token:
            new = await node.auth.tokens.create("admin", ["admin:"])
            print(f"admin token (valid while this process runs): {new.token}", flush=True)
        for service in node.services:
            line = service.describe()
            if line:
                print(line, flush=True)
        print(node.startup_line(), flush=True)
        await stop.wait()
        await node.aclose()
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
