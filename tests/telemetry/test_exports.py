"""Pin the public surfaces of millstream.telemetry and millstream.services.sentinel."""

import millstream.services.sentinel
import millstream.telemetry

TELEMETRY = {
    # upstream's sentinel_sdk names
    "SentinelClient",
    "AsyncSentinelClient",
    "TelemetryEvent",
    "PromptInfo",
    "ResponseInfo",
    "TelemetryEventBuilder",
    "SentinelConfig",
    "Severity",
    "AnomalyType",
    "DetectionMethod",
    "SentinelError",
    "ConnectionError",
    "ValidationError",
    "SendError",
    "ConfigurationError",
    "TimeoutError",
    "__version__",
    # millstream's additions
    "AnomalyContext",
    "AnomalyDetails",
    "AnomalyEvent",
    "DEFAULT_TOPIC",
    "Instrumentation",
    "LLMCall",
    "SentinelStats",
    "otel_attributes",
}


def test_telemetry_exports() -> None:
    exported = millstream.telemetry.__all__
    assert set(exported) == TELEMETRY
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(millstream.telemetry, name), name


def test_sentinel_exports() -> None:
    exported = millstream.services.sentinel.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(millstream.services.sentinel, name), name
    assert {"SentinelService", "Engine", "DetectorSettings"} <= set(exported)


def test_sdk_never_imports_server_code() -> None:
    import subprocess
    import sys

    code = (
        "import sys, millstream.telemetry; "
        "bad = [m for m in sys.modules if m.startswith(('millstream.server', 'millstream.log', "
        "'millstream.node', 'millstream.services'))]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
