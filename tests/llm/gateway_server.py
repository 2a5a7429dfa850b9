"""Until ``millstream serve`` runs services (the node), this process stands in for it: the
Durable Streams app and the LLM gateway on one store, under real uvicorn, on a free port.

``python tests/llm/gateway_server.py [--memory | --data-dir DIR] [--llm-offline]
[--llm-model TIER=PROVIDER:MODEL] [--llm-rpm N] [--llm-tpm N] [--bootstrap-key PROJECT[:BUDGET]]``;
provider keys and base URLs from the standard environment variables. Prints
``key: <key>`` for each bootstrap key, then ``millstream listening on http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from millstream.auth import TokenStore
from millstream.log import MemoryStore, SqliteStore, Store
from millstream.server.http import create_app
from millstream.services.llm import GatewayConfig, LLMGateway, RateLimits, parse_model_override

STARTED = time.time()


def build(args: argparse.Namespace) -> tuple[Any, Store, LLMGateway]:
    store: Store = MemoryStore() if args.memory else SqliteStore(Path(args.data_dir))
    overrides = dict(parse_model_override(text) for text in args.llm_model)
    config = GatewayConfig.from_env(
        offline=args.llm_offline,
        offline_token_delay=args.offline_token_delay,
        model_overrides=overrides,
        rate_limits=RateLimits(args.llm_rpm or None, args.llm_tpm or None),
    )
    gateway = LLMGateway(store, config)
    streams = create_app(store, long_poll_timeout=1.0)
    routes = gateway.routes()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await store.start()
                    await streams.startup()
                    await gateway.start()
                    for spec in args.bootstrap_key:
                        project, _, budget = spec.partition(":")
                        await gateway.ledger.ensure_project(
                            project,
                            budget_tokens=int(budget) if budget else None,
                            replace_budget=True,
                        )
                        new = await TokenStore(store).create(project, [f"llm:{project}"])
                        print(f"key: {new.token}", flush=True)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    store.notifier.close()
                    await gateway.aclose()
                    await streams.shutdown()
                    await store.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/health":
            body = orjson.dumps(
                {
                    "status": "ok",
                    "version": "test",
                    "uptime_seconds": time.time() - STARTED,
                    "services": {"llm": await gateway.health()},
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        for route in routes:
            if route.matches(path):
                await route.app(scope, receive, send)
                return
        await streams(scope, receive, send)

    return app, store, gateway


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--data-dir", default="millstream-data")
    parser.add_argument("--llm-offline", action="store_true")
    parser.add_argument("--offline-token-delay", type=float, default=0.0)
    parser.add_argument("--llm-model", action="append", default=[])
    parser.add_argument("--llm-rpm", type=int, default=100)
    parser.add_argument("--llm-tpm", type=int, default=0)
    parser.add_argument("--bootstrap-key", action="append", default=[])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app, _, gateway = build(args)
    print(gateway.describe(), flush=True)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"millstream listening on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    Server(config).run()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
