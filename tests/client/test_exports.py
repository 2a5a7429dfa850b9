"""The public names are pinned: ``millstream.client.__all__`` and the top-level re-exports."""

from __future__ import annotations

import millstream
import millstream.client

CLIENT = [
    "AppendResult",
    "AsyncDurableStream",
    "AsyncIdempotentProducer",
    "AsyncStreamResponse",
    "CloseResult",
    "DurableStream",
    "DurableStreamError",
    "FetchError",
    "FetchTimeoutError",
    "HeadResult",
    "HeadersLike",
    "IdempotentAppendResult",
    "IdempotentProducer",
    "InvalidArgumentError",
    "LiveMode",
    "Offset",
    "ParamsLike",
    "RetentionGoneError",
    "RetryPolicy",
    "SSEBytesIterationError",
    "SSEEncoding",
    "SSEEncodingError",
    "SSEEvent",
    "SSENotSupportedError",
    "SSEParser",
    "SSEProtocolError",
    "SSEReadAllError",
    "SeqConflictError",
    "SequenceGapError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamConsumedError",
    "StreamEvent",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamResponse",
    "astream",
    "stream",
]

TOP_LEVEL = sorted(
    [*(n for n in CLIENT if n not in {"SSEEvent", "SSEParser", "SSEProtocolError"}), "__version__"]
)


def test_client_all_is_pinned_and_sorted() -> None:
    assert millstream.client.__all__ == CLIENT
    assert sorted(CLIENT) == CLIENT
    for name in CLIENT:
        assert getattr(millstream.client, name) is not None


def test_top_level_reexports() -> None:
    assert millstream.__all__ == TOP_LEVEL
    for name in TOP_LEVEL:
        if name != "__version__":
            assert getattr(millstream, name) is getattr(millstream.client, name)


def test_sdk_never_imports_server_or_log() -> None:
    import subprocess
    import sys

    code = (
        "import sys, millstream, millstream.client;"
        "bad = [m for m in sys.modules if m.startswith(('millstream.server', 'millstream.log'))];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
