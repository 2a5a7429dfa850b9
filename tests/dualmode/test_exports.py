"""``millstream.dualmode.__all__`` is pinned, and ``import millstream`` never needs FastAPI."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import millstream.dualmode

DUALMODE = [
    "Backpressure",
    "BackpressurePolicy",
    "BatchTooLargeError",
    "DualMode",
    "DualModeEndpoint",
    "DualModeError",
    "DualModeResponse",
    "GenerationConflictError",
    "GenerationLogError",
    "GenerationNotFoundError",
    "IdempotencyKeyError",
    "InvalidModeError",
    "LastEventIdError",
    "ModeDetector",
    "ResponseMode",
    "SSEEvent",
    "SSEFormatError",
    "StreamBuffer",
    "StreamSettings",
    "StreamStatistics",
    "batch_to_stream",
    "create_streaming_response",
    "detect_mode",
    "detect_response_mode",
    "dual_mode",
    "format_sse_data",
    "format_sse_event",
    "negotiate_mode",
    "resilient_stream",
    "transform_stream",
]


def test_exports_are_pinned_and_sorted() -> None:
    assert millstream.dualmode.__all__ == DUALMODE
    assert sorted(DUALMODE) == DUALMODE
    for name in DUALMODE:
        assert getattr(millstream.dualmode, name) is not None


def test_errors_form_one_tree_with_hints() -> None:
    for name in DUALMODE:
        value = getattr(millstream.dualmode, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, millstream.dualmode.DualModeError)
            if value is not millstream.dualmode.DualModeError:
                assert value("x").hint, name


BLOCK_FASTAPI = textwrap.dedent(
    """
    import sys

    class NoFastAPI:
        def find_spec(self, name, path=None, target=None):
            if name == "fastapi" or name.startswith("fastapi."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoFastAPI())
    import millstream
    import millstream.client
    print("millstream", millstream.__version__)
    try:
        import millstream.dualmode
    except ImportError as exc:
        print("dualmode:", exc)
    """
)


def test_millstream_imports_without_fastapi() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_FASTAPI], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("millstream ")
    assert "pip install 'millstream[dualmode]'" in lines[1]
