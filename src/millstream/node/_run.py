"""Running a node as a process (``millstream serve``): uvloop, signals, the startup line.

The first SIGTERM or SIGINT stops the node gracefully (``Node.aclose``) and the process exits
0; a second one stops waiting for in-flight requests. A door that cannot listen exits 1.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from millstream.log import Store

from ._node import Node
from ._options import NodeOptions

__all__ = ["run"]


def run(store: Store, options: NodeOptions) -> int:
    """Serve ``store`` until SIGTERM/SIGINT; returns the exit status."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_serve(Node(store, options)))


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
        except OSError as exc:
            print(f"millstream: cannot start: {exc}", file=sys.stderr, flush=True)
            return 1
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
