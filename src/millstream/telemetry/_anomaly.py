"""The anomaly event: what the Sentinel appends to the anomalies topic when a detector fires.

Shared by the SDK (users read anomalies) and the Sentinel service (which writes them); the
fields and their order are the Rust core's ``AnomalyEvent`` (``details`` and ``context`` as
nested objects), serialized with the same timestamp format as telemetry events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from ._errors import ValidationError
from ._events import format_timestamp, parse_timestamp, utc_now
from ._types import AnomalyType, DetectionMethod, Severity

__all__ = ["AnomalyContext", "AnomalyDetails", "AnomalyEvent"]


@dataclass
class AnomalyDetails:
    """The metric, the value seen, the baseline and the threshold it crossed."""

    metric: str
    value: float
    baseline: float
    threshold: float
    deviation_sigma: float | None = None
    additional: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "threshold": self.threshold,
            "deviation_sigma": self.deviation_sigma,
            "additional": self.additional,
        }


@dataclass
class AnomalyContext:
    """Where it happened: trace, user and region of the triggering call, the window analysed."""

    trace_id: str | None = None
    user_id: str | None = None
    region: str | None = None
    time_window: str = ""
    sample_count: int = 0
    additional: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "user_id": self.user_id,
            "region": self.region,
            "time_window": self.time_window,
            "sample_count": self.sample_count,
            "additional": self.additional,
        }


@dataclass
class AnomalyEvent:
    """One detected anomaly (``confidence`` in ``[0, 1]``)."""

    severity: Severity
    anomaly_type: AnomalyType
    service_name: str
    model: str
    detection_method: DetectionMethod
    confidence: float
    details: AnomalyDetails
    context: AnomalyContext
    alert_id: UUID = field(default_factory=uuid4)
    timestamp: datetime = field(default_factory=utc_now)
    root_cause: str | None = None
    remediation: list[str] = field(default_factory=list)
    related_alerts: list[UUID] = field(default_factory=list)
    runbook_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.confidence, int | float) or not 0.0 <= self.confidence <= 1.0:
            raise ValidationError("confidence must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": str(self.alert_id),
            "timestamp": format_timestamp(self.timestamp),
            "severity": self.severity.value,
            "anomaly_type": self.anomaly_type.value,
            "service_name": self.service_name,
            "model": self.model,
            "detection_method": self.detection_method.value,
            "confidence": self.confidence,
            "details": self.details.to_dict(),
            "context": self.context.to_dict(),
            "root_cause": self.root_cause,
            "remediation": self.remediation,
            "related_alerts": [str(alert) for alert in self.related_alerts],
            "runbook_url": self.runbook_url,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict()).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnomalyEvent:
        """Parse the wire object (``ValidationError`` when a field is missing or invalid)."""
        try:
            details = data["details"]
            context = data["context"]
            return cls(
                alert_id=UUID(data["alert_id"]),
                timestamp=parse_timestamp(data["timestamp"]),
                severity=Severity(data["severity"]),
                anomaly_type=AnomalyType(data["anomaly_type"]),
                service_name=data["service_name"],
                model=data["model"],
                detection_method=DetectionMethod(data["detection_method"]),
                confidence=data["confidence"],
                details=AnomalyDetails(
                    metric=details["metric"],
                    value=details["value"],
                    baseline=details["baseline"],
                    threshold=details["threshold"],
                    deviation_sigma=details.get("deviation_sigma"),
                    additional=dict(details.get("additional") or {}),
                ),
                context=AnomalyContext(
                    trace_id=context.get("trace_id"),
                    user_id=context.get("user_id"),
                    region=context.get("region"),
                    time_window=context.get("time_window", ""),
                    sample_count=context.get("sample_count", 0),
                    additional=dict(context.get("additional") or {}),
                ),
                root_cause=data.get("root_cause"),
                remediation=list(data.get("remediation") or []),
                related_alerts=[UUID(a) for a in data.get("related_alerts") or []],
                runbook_url=data.get("runbook_url"),
            )
        except KeyError as exc:
            raise ValidationError(f"{exc.args[0]} is required") from None
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"invalid anomaly event: {exc}") from exc

    @classmethod
    def from_json(cls, data: bytes | str) -> AnomalyEvent:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise ValidationError(f"anomaly is not valid JSON: {exc}") from exc
        if not isinstance(parsed, Mapping):
            raise ValidationError("anomaly must be a JSON object")
        return cls.from_dict(parsed)
