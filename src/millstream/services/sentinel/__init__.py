"""The Sentinel (seed 003's server side): anomaly detection over LLM telemetry, inside the node.

``SentinelService`` reads the telemetry topics from the store, runs the detectors of
``Engine`` (pure and deterministic, ``_detectors``) and appends anomalies to ``llm-anomalies``,
with its position committed atomically alongside them; ``/api/v1`` serves queries and ingest.
"""

from ._detectors import DetectorSettings, Engine, Outcome
from ._service import ANOMALIES_TOPIC, DEAD_LETTER_TOPIC, TELEMETRY_TOPICS, SentinelService
from ._validation import check_limits, mask_pii, parse_event

__all__ = [
    "ANOMALIES_TOPIC",
    "DEAD_LETTER_TOPIC",
    "TELEMETRY_TOPICS",
    "DetectorSettings",
    "Engine",
    "Outcome",
    "SentinelService",
    "check_limits",
    "mask_pii",
    "parse_event",
]
