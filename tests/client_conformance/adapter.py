"""millstream's client driven by the official client-conformance suite
(``@durable-streams/client-conformance-tests``, run by ``tests/test_client_conformance.py``).

The suite's runner writes one JSON command per line to stdin and reads one JSON result per line
from stdout (its ``src/protocol.ts``). ``python adapter.py sync`` answers with the blocking
client (``DurableStream``, ``stream()``, ``IdempotentProducer.blocking``), ``python adapter.py
async`` with the async one (``AsyncDurableStream``, ``astream()``, and ``IdempotentProducer``
built inside the event loop, as the official client's asyncio producer).

It fails loudly: the runner only checks the results of commands that succeed, so an error
result is sent only for the client's own typed errors (``DurableStreamError`` and its tree);
any other exception is a bug in the client or here, and ends the process with a traceback,
which fails the test at hand and every one after it.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

import millstream
from millstream.client import (
    AsyncDurableStream,
    DurableStream,
    DurableStreamError,
    FetchError,
    FetchTimeoutError,
    IdempotentProducer,
    InvalidArgumentError,
    RetryPolicy,
    SeqConflictError,
    SSEEncodingError,
    StreamClosedError,
    StreamExistsError,
    StreamNotFoundError,
    astream,
    stream,
)

Result = dict[str, Any]
# What this client implements, including what the official Python client leaves out
# (auto, retryOptions, batchItems).
FEATURES = {
    "batching": True,
    "sse": True,
    "longPoll": True,
    "auto": True,
    "streaming": True,
    "dynamicHeaders": True,
    "retryOptions": True,
    "batchItems": True,
    "strictZeroValidation": True,
}
APPEND_ATTEMPTS = 4  # an application's own retries of appends the client called retryable


# Options this adapter converts from the suite's milliseconds to the client's seconds.
SUITE_NAMES = {"initial_delay": "initialDelayMs", "max_delay": "maxDelayMs"}


def suite_name(argument: str) -> str:
    """A client argument under the suite's (TypeScript) name: max_batch_bytes, maxBatchBytes."""
    if argument in SUITE_NAMES:
        return SUITE_NAMES[argument]
    head, *rest = argument.split("_")
    return head + "".join(part.title() for part in rest)


def error_result(command: str, error: DurableStreamError) -> Result:
    """The protocol's error result for one of the client's typed errors."""
    code, status = "UNEXPECTED_STATUS", error.status
    if isinstance(error, StreamNotFoundError):
        code = "NOT_FOUND"
    elif isinstance(error, StreamExistsError):
        code = "CONFLICT"
    elif isinstance(error, SeqConflictError):
        code = "SEQUENCE_CONFLICT"
    elif isinstance(error, StreamClosedError):
        code = "STREAM_CLOSED"
    elif isinstance(error, InvalidArgumentError):
        code = "INVALID_ARGUMENT"
    elif error.code == "PARSE_ERROR" or isinstance(error, SSEEncodingError):
        code, status = "PARSE_ERROR", None
    elif error.code == "BAD_REQUEST":
        code = "INVALID_OFFSET"
    elif isinstance(error, FetchTimeoutError):
        code = "TIMEOUT"
    elif isinstance(error, FetchError) and error.status is None:
        code = "NETWORK_ERROR"
    message = str(error)
    if isinstance(error, InvalidArgumentError):
        # The suite names options as its TypeScript client does (maxBatchBytes).
        message = f"{suite_name(error.argument)}: {message}"
    result: Result = {
        "type": "error",
        "success": False,
        "commandType": command,
        "errorCode": code,
        "message": message,
    }
    if status is not None:
        result["status"] = status
    return result


class Dynamic:
    """A dynamic header or parameter (``set-dynamic-header``): one value per command."""

    def __init__(self, kind: str, initial: str | None = None) -> None:
        self.kind, self.counter, self.token = kind, 0, initial

    def next(self) -> str:
        if self.kind == "counter":
            self.counter += 1
            return str(self.counter)
        if self.kind == "timestamp":
            return str(int(time.time() * 1000))
        return self.token or ""


class Read:
    """One ``read`` command's options and what it collected, shared by both twins."""

    def __init__(self, command: Result, content_type: str | None) -> None:
        self.offset = command.get("offset") or "-1"
        live = command.get("live", False)
        self.live: Any = live if live in (True, "long-poll", "sse") else False
        self.timeout = command.get("timeoutMs", 5000) / 1000
        self.deadline = time.monotonic() + self.timeout
        self.max_chunks = command.get("maxChunks", 100)
        self.wait_for_up_to_date = command.get("waitForUpToDate", False)
        self.json = (content_type or "").split(";")[0].strip().lower() == "application/json"
        self.chunks: list[Result] = []
        self.up_to_date = False
        self.stream_closed = False
        self.status = 200
        self.full = False

    @property
    def mode(self) -> str:
        return "json" if self.json else "bytes"

    def text(self, data: Any) -> str:
        if self.json:
            return orjson.dumps(data).decode()
        return bytes(data).decode("utf-8", "replace")

    def catch_up(self, data: Any, offset: str) -> None:
        if data:
            self.chunks.append({"data": self.text(data), "offset": offset})

    def event(self, data: Any, offset: str, up_to_date: bool, closed: bool) -> bool:
        """One live event; True when the read should stop."""
        if data:
            self.chunks.append({"data": self.text(data), "offset": offset})
        self.offset, self.up_to_date = offset, up_to_date
        if len(self.chunks) >= self.max_chunks:
            self.full = not closed  # stopped early, unless that was the end anyway
            return True
        if self.wait_for_up_to_date and up_to_date:
            return True
        return time.monotonic() >= self.deadline

    def finish(self, response: Any) -> None:
        self.status = response.status
        self.offset = response.offset
        self.up_to_date = response.up_to_date or self.up_to_date
        self.stream_closed = response.stream_closed

    def result(self, sent: Result) -> Result:
        return {
            "type": "read",
            "success": True,
            "status": self.status,
            "chunks": self.chunks,
            "offset": self.offset,
            "upToDate": self.up_to_date,
            "streamClosed": self.stream_closed and not self.full,
            **sent,
        }


class Adapter:
    """State and command handling both twins share; a twin supplies the I/O."""

    def __init__(self) -> None:
        self.base = ""
        self.content_types: dict[str, str] = {}
        self.headers: dict[str, Dynamic] = {}
        self.params: dict[str, Dynamic] = {}
        self.producers: dict[tuple[str, str, int], Any] = {}
        self.closed_by_producer: set[tuple[str, str]] = set()

    def url(self, command: Result) -> str:
        return f"{self.base}{command['path']}"

    def content_type(self, command: Result) -> str:
        return self.content_types.get(command["path"], "application/octet-stream")

    def dynamic(self, command: Result) -> tuple[dict[str, Any], dict[str, Any], Result]:
        """This command's headers and params (values computed once per command, handed to the
        client as functions) and the ``headersSent``/``paramsSent`` to report."""
        headers = {name: d.next() for name, d in self.headers.items()}
        params = {name: d.next() for name, d in self.params.items()}
        sent: Result = {}
        if headers:
            sent["headersSent"] = dict(headers)
        if params:
            sent["paramsSent"] = dict(params)
        functions = {name: self.function(value) for name, value in headers.items()}
        functions.update(command.get("headers") or {})
        param_functions = {name: self.function(value) for name, value in params.items()}
        return functions, param_functions, sent

    def function(self, value: str) -> Callable[[], Any]:
        return lambda: value

    @staticmethod
    def body(command: Result) -> bytes | str | None:
        data = command.get("data")
        if data is None:
            return None
        return base64.b64decode(data) if command.get("binary") else data

    def init(self, command: Result, mode: str) -> Result:
        self.base = command["serverUrl"]
        self.content_types.clear()
        self.headers.clear()
        self.params.clear()
        self.producers.clear()
        self.closed_by_producer.clear()
        return {
            "type": "init",
            "success": True,
            "clientName": f"millstream ({mode})",
            "clientVersion": millstream.__version__,
            "features": FEATURES,
        }

    def set_dynamic(self, command: Result) -> Result:
        if command["type"] == "set-dynamic-header":
            self.headers[command["name"]] = Dynamic(
                command["valueType"], command.get("initialValue")
            )
        elif command["type"] == "set-dynamic-param":
            self.params[command["name"]] = Dynamic(command["valueType"])
        else:
            self.headers.clear()
            self.params.clear()
        return {"type": command["type"], "success": True}

    @staticmethod
    def retry_policy(target: Result) -> RetryPolicy:
        defaults = RetryPolicy()
        return RetryPolicy(
            max_retries=target.get("maxRetries", defaults.max_retries),
            initial_delay=target.get("initialDelayMs", defaults.initial_delay * 1000) / 1000,
            max_delay=target.get("maxDelayMs", defaults.max_delay * 1000) / 1000,
            multiplier=target.get("multiplier", defaults.multiplier),
        )

    @staticmethod
    def producer_options(target: Result) -> dict[str, Any]:
        options: dict[str, Any] = {"epoch": target.get("epoch", 0)}
        if "maxBatchBytes" in target:
            options["max_batch_bytes"] = target["maxBatchBytes"]
        if "maxBatchItems" in target:
            options["max_batch_items"] = target["maxBatchItems"]
        return options


class SyncAdapter(Adapter):
    """The blocking client."""

    def handle(self, command: Result) -> Result:
        kind = command["type"]
        if kind == "init":
            return self.init(command, "sync")
        if kind in ("set-dynamic-header", "set-dynamic-param", "clear-dynamic"):
            return self.set_dynamic(command)
        if kind == "shutdown":
            return {"type": "shutdown", "success": True}
        try:
            return getattr(self, "do_" + kind.replace("-", "_"))(command)
        except DurableStreamError as error:
            return error_result(kind, error)

    def do_create(self, command: Result) -> Result:
        url = self.url(command)
        try:
            DurableStream.head_static(url)
            existed = True
        except StreamNotFoundError:
            existed = False
        content_type = command.get("contentType") or "application/octet-stream"
        with DurableStream.create(
            url,
            content_type=content_type,
            ttl_seconds=command.get("ttlSeconds"),
            expires_at=command.get("expiresAt"),
            headers=command.get("headers"),
            closed=command.get("closed", False),
            body=self.body(command),
        ) as handle:
            self.content_types[command["path"]] = content_type
            offset = handle.head().offset
        return {
            "type": "create",
            "success": True,
            "status": 200 if existed else 201,
            "offset": offset,
        }

    def do_connect(self, command: Result) -> Result:
        with DurableStream.connect(self.url(command), headers=command.get("headers")) as handle:
            head = handle.head()
        if head.content_type:
            self.content_types[command["path"]] = head.content_type
        return {"type": "connect", "success": True, "status": 200, "offset": head.offset}

    def do_append(self, command: Result) -> Result:
        headers, params, sent = self.dynamic(command)
        seq = str(command["seq"]) if command.get("seq") is not None else None
        with DurableStream(
            self.url(command),
            content_type=self.content_type(command),
            headers=headers,
            params=params,
            batching=False,
        ) as handle:
            for attempt in range(APPEND_ATTEMPTS):
                try:
                    result = handle.append(self.body(command) or "", seq=seq)
                    break
                except FetchError as error:
                    if not error.retryable or attempt == APPEND_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * 2**attempt)
        return {
            "type": "append",
            "success": True,
            "status": 200,
            "offset": result.next_offset,
            **sent,
        }

    def do_read(self, command: Result) -> Result:
        headers, params, sent = self.dynamic(command)
        read = Read(command, self.content_types.get(command["path"]))
        try:
            with stream(
                self.url(command),
                offset=read.offset,
                live=read.live,
                headers=headers,
                params=params,
                timeout=read.timeout,
            ) as res:
                if read.live is False:
                    data = res.read_json() if read.json else res.read_bytes()
                    read.catch_up(data, res.offset)
                else:
                    for event in res.iter_events(mode=read.mode):
                        if read.event(
                            event.data, event.next_offset, event.up_to_date, event.closed
                        ):
                            break
                read.finish(res)
        except FetchTimeoutError:
            read.up_to_date = True  # the read's own timeout: nothing more arrived in time
        return read.result(sent)

    def do_head(self, command: Result) -> Result:
        head = DurableStream.head_static(self.url(command), headers=command.get("headers"))
        if head.content_type:
            self.content_types[command["path"]] = head.content_type
        return {
            "type": "head",
            "success": True,
            "status": 200,
            "offset": head.offset,
            "contentType": head.content_type,
            "streamClosed": head.stream_closed,
        }

    def do_delete(self, command: Result) -> Result:
        DurableStream.delete_static(self.url(command), headers=command.get("headers"))
        self.content_types.pop(command["path"], None)
        return {"type": "delete", "success": True, "status": 200}

    def do_close(self, command: Result) -> Result:
        with DurableStream(self.url(command), content_type=self.content_type(command)) as handle:
            result = handle.close_stream(
                self.body(command), content_type=command.get("contentType")
            )
        return {"type": "close", "success": True, "finalOffset": result.final_offset}

    def producer(self, command: Result, **options: Any) -> Any:
        return IdempotentProducer.blocking(
            self.url(command),
            command["producerId"],
            epoch=command.get("epoch", 0),
            auto_claim=command.get("autoClaim", False),
            content_type=self.content_type(command),
            headers=command.get("headers"),
            **options,
        )

    def cached_producer(self, command: Result) -> Any:
        key = (command["path"], command["producerId"], command.get("epoch", 0))
        if key not in self.producers:
            self.producers[key] = self.producer(command, max_in_flight=1)
        return self.producers[key]

    def do_idempotent_append(self, command: Result) -> Result:
        producer = self.cached_producer(command)
        producer.append(command["data"])
        producer.flush()
        return {"type": "idempotent-append", "success": True, "status": 200}

    def do_idempotent_append_batch(self, command: Result) -> Result:
        in_flight = command.get("maxInFlight", 1)
        # Several requests at once when asked for (one item per batch), else one batch: the
        # linger holds the items until flush() sends them together, so the grouping (which the
        # suite's dedup case repeats exactly) never depends on when the producer's thread runs.
        options: dict[str, Any] = (
            {"max_in_flight": in_flight, "max_batch_bytes": 1}
            if in_flight > 1
            else {"linger_ms": 60_000}
        )
        with self.producer(command, **options) as producer:
            for item in command["items"]:
                producer.append(item)
            producer.flush()
        return {"type": "idempotent-append-batch", "success": True, "status": 200}

    def do_idempotent_close(self, command: Result) -> Result:
        result = self.cached_producer(command).close_stream(self.body(command))
        return {
            "type": "idempotent-close",
            "success": True,
            "status": 200,
            "finalOffset": result.offset,
        }

    do_idempotent_producer_close = do_idempotent_close

    def do_idempotent_detach(self, command: Result) -> Result:
        key = (command["path"], command["producerId"], command.get("epoch", 0))
        producer = self.producers.pop(key, None)
        if producer is not None:
            producer.close()  # flush and release; the stream stays open
        return {"type": "idempotent-detach", "success": True, "status": 200}

    def do_validate(self, command: Result) -> Result:
        target = command["target"]
        if target["target"] == "retry-options":
            self.retry_policy(target)
        else:
            options = self.producer_options(target)
            producer = IdempotentProducer.blocking(
                f"{self.base}/validate", target.get("producerId", "test-producer"), **options
            )
            producer.close()
        return {"type": "validate", "success": True}


class AsyncAdapter(Adapter):
    """The async client; header and parameter functions are async, awaited per request."""

    def function(self, value: str) -> Callable[[], Awaitable[str]]:
        async def header() -> str:
            return value

        return header

    async def handle(self, command: Result) -> Result:
        kind = command["type"]
        if kind == "init":
            return self.init(command, "async")
        if kind in ("set-dynamic-header", "set-dynamic-param", "clear-dynamic"):
            return self.set_dynamic(command)
        if kind == "shutdown":
            for producer in self.producers.values():
                await producer.close()
            return {"type": "shutdown", "success": True}
        try:
            result: Result = await getattr(self, "do_" + kind.replace("-", "_"))(command)
        except DurableStreamError as error:
            return error_result(kind, error)
        return result

    async def do_create(self, command: Result) -> Result:
        url = self.url(command)
        try:
            await AsyncDurableStream.head_static(url)
            existed = True
        except StreamNotFoundError:
            existed = False
        content_type = command.get("contentType") or "application/octet-stream"
        async with await AsyncDurableStream.create(
            url,
            content_type=content_type,
            ttl_seconds=command.get("ttlSeconds"),
            expires_at=command.get("expiresAt"),
            headers=command.get("headers"),
            closed=command.get("closed", False),
            body=self.body(command),
        ) as handle:
            self.content_types[command["path"]] = content_type
            offset = (await handle.head()).offset
        return {
            "type": "create",
            "success": True,
            "status": 200 if existed else 201,
            "offset": offset,
        }

    async def do_connect(self, command: Result) -> Result:
        handle = await AsyncDurableStream.connect(self.url(command), headers=command.get("headers"))
        async with handle:
            head = await handle.head()
        if head.content_type:
            self.content_types[command["path"]] = head.content_type
        return {"type": "connect", "success": True, "status": 200, "offset": head.offset}

    async def do_append(self, command: Result) -> Result:
        headers, params, sent = self.dynamic(command)
        seq = str(command["seq"]) if command.get("seq") is not None else None
        async with AsyncDurableStream(
            self.url(command),
            content_type=self.content_type(command),
            headers=headers,
            params=params,
            batching=False,
        ) as handle:
            for attempt in range(APPEND_ATTEMPTS):
                try:
                    result = await handle.append(self.body(command) or "", seq=seq)
                    break
                except FetchError as error:
                    if not error.retryable or attempt == APPEND_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.1 * 2**attempt)
        return {
            "type": "append",
            "success": True,
            "status": 200,
            "offset": result.next_offset,
            **sent,
        }

    async def do_read(self, command: Result) -> Result:
        headers, params, sent = self.dynamic(command)
        read = Read(command, self.content_types.get(command["path"]))
        try:
            async with astream(
                self.url(command),
                offset=read.offset,
                live=read.live,
                headers=headers,
                params=params,
                timeout=read.timeout,
            ) as res:
                if read.live is False:
                    data = await (res.read_json() if read.json else res.read_bytes())
                    read.catch_up(data, res.offset)
                else:
                    async for event in res.iter_events(mode=read.mode):
                        if read.event(
                            event.data, event.next_offset, event.up_to_date, event.closed
                        ):
                            break
                read.finish(res)
        except FetchTimeoutError:
            read.up_to_date = True  # the read's own timeout: nothing more arrived in time
        return read.result(sent)

    async def do_head(self, command: Result) -> Result:
        url = self.url(command)
        head = await AsyncDurableStream.head_static(url, headers=command.get("headers"))
        if head.content_type:
            self.content_types[command["path"]] = head.content_type
        return {
            "type": "head",
            "success": True,
            "status": 200,
            "offset": head.offset,
            "contentType": head.content_type,
            "streamClosed": head.stream_closed,
        }

    async def do_delete(self, command: Result) -> Result:
        await AsyncDurableStream.delete_static(self.url(command), headers=command.get("headers"))
        self.content_types.pop(command["path"], None)
        return {"type": "delete", "success": True, "status": 200}

    async def do_close(self, command: Result) -> Result:
        url, content_type = self.url(command), self.content_type(command)
        async with AsyncDurableStream(url, content_type=content_type) as handle:
            result = await handle.close_stream(
                self.body(command), content_type=command.get("contentType")
            )
        return {"type": "close", "success": True, "finalOffset": result.final_offset}

    def producer(self, command: Result, **options: Any) -> Any:
        # The official name, inside the event loop: the asyncio producer.
        return IdempotentProducer(
            self.url(command),
            command["producerId"],
            epoch=command.get("epoch", 0),
            auto_claim=command.get("autoClaim", False),
            content_type=self.content_type(command),
            headers=command.get("headers"),
            **options,
        )

    def cached_producer(self, command: Result) -> Any:
        key = (command["path"], command["producerId"], command.get("epoch", 0))
        if key not in self.producers:
            self.producers[key] = self.producer(command, max_in_flight=1)
        return self.producers[key]

    async def do_idempotent_append(self, command: Result) -> Result:
        producer = self.cached_producer(command)
        producer.append(command["data"])
        await producer.flush()
        return {"type": "idempotent-append", "success": True, "status": 200}

    async def do_idempotent_append_batch(self, command: Result) -> Result:
        in_flight = command.get("maxInFlight", 1)
        options = {"max_in_flight": in_flight, "max_batch_bytes": 1} if in_flight > 1 else {}
        async with self.producer(command, **options) as producer:
            for item in command["items"]:
                producer.append(item)
            await producer.flush()
        return {"type": "idempotent-append-batch", "success": True, "status": 200}

    async def do_idempotent_close(self, command: Result) -> Result:
        result = await self.cached_producer(command).close_stream(self.body(command))
        return {
            "type": "idempotent-close",
            "success": True,
            "status": 200,
            "finalOffset": result.offset,
        }

    do_idempotent_producer_close = do_idempotent_close

    async def do_idempotent_detach(self, command: Result) -> Result:
        key = (command["path"], command["producerId"], command.get("epoch", 0))
        producer = self.producers.pop(key, None)
        if producer is not None:
            await producer.close()  # flush and release; the stream stays open
        return {"type": "idempotent-detach", "success": True, "status": 200}

    async def do_validate(self, command: Result) -> Result:
        target = command["target"]
        if target["target"] == "retry-options":
            self.retry_policy(target)
        else:
            options = self.producer_options(target)
            name = target.get("producerId", "test-producer")
            producer = IdempotentProducer(f"{self.base}/validate", name, **options)
            await producer.close()
        return {"type": "validate", "success": True}


def write(result: Result) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


def crash(command: Result) -> None:
    """Anything but a client error is a bug: say so and stop, failing the run."""
    print(f"adapter: {command.get('type')} raised an unexpected error", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    sys.exit(3)


def run_sync() -> None:
    adapter = SyncAdapter()
    for line in sys.stdin:
        if not line.strip():
            continue
        command = orjson.loads(line)
        try:
            write(adapter.handle(command))
        except Exception:
            crash(command)
        if command["type"] == "shutdown":
            return


async def run_async() -> None:
    adapter = AsyncAdapter()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if not line.strip():
            continue
        command = orjson.loads(line)
        try:
            write(await adapter.handle(command))
        except Exception:
            crash(command)
        if command["type"] == "shutdown":
            return


if __name__ == "__main__":
    if sys.argv[1:] == ["sync"]:
        run_sync()
    elif sys.argv[1:] == ["async"]:
        asyncio.run(run_async())
    else:
        sys.exit("usage: adapter.py sync|async")
