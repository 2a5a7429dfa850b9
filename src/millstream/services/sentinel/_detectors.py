"""The Sentinel's detectors: pure, deterministic functions of the event sequence.

Per (service, model) the engine keeps rolling baselines of ``latency_ms``, ``total_tokens`` and
``cost_usd`` (the last ``baseline_window`` values, valid from ``min_samples``), and runs, with
the reference's default settings:

- z-score on latency, total tokens and cost: z > 3 is medium, >= 4 high, >= 6 critical
  (``latency_spike``, ``token_usage_spike``, ``cost_anomaly``);
- IQR on latency: x > Q3 + 1.5 IQR (``latency_spike``);
- MAD on latency, off by default: 0.6745 (x - median) / MAD > 3.5 (``latency_spike``);
- CUSUM on cost: threshold 5, slack 0.5 (``cost_anomaly``);
- PSI drift on latency, total tokens and cost: 0.1 moderate, 0.25 significant, reference 1,000
  calls, current 100, 10 bins (``input_drift``; ``cost_anomaly`` for cost);
- error rate (the reference names no setting): errors in the last 100 calls against the rate
  of the 900 before, binomial z > 4 and at least 10% failing (``error_rate_increase``); the
  window slides with every call, so the bar is high enough for tens of thousands of looks.

Choices where the reference is silent or does not hold up (each measured by the synthetic
workload in ``tests/sentinel/test_detectors.py``):

- Spikes are upward only: a call that is faster or cheaper than usual is not an anomaly.
- Deviations have a floor of 1% of the mean (median for IQR/MAD), so a constant baseline still
  flags a jump instead of dividing by zero.
- CUSUM runs on standardized cost (the reference's threshold 5 and slack 0.5 on raw dollars
  would never fire on cents-sized costs), and each call contributes at most the z-score threshold
  (3): a single spike is the z-score detector's job, a sustained shift is CUSUM's.
- PSI bins are the reference window's deciles (not equal widths, which one outlier stretches),
  it is evaluated once per completed current window (100 calls, then the window joins the
  reference), and the thresholds apply to PSI minus its expected value for two samples of one
  distribution, ``(bins - 1) (1/n + 1/m)`` (about 0.1 for 100 vs 1,000 calls: raw PSI would
  cross the "moderate" 0.1 threshold in a third of windows without any drift).
- Baselines learn from every valid event (as upstream), after the event was checked against
  them.

Time is the events' own (their timestamps, never the wall clock), alert ids are derived from
the source position, and the state round-trips through ``to_state``: replaying the same events
gives the same anomalies, which makes the service's crash recovery exact.
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_right
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from millstream.telemetry import (
    AnomalyContext,
    AnomalyDetails,
    AnomalyEvent,
    AnomalyType,
    DetectionMethod,
    Severity,
    TelemetryEvent,
)

from ._window import RollingWindow, SortedWindow, quantile

__all__ = ["Call", "DetectorSettings", "Engine", "Outcome"]

ALERT_NAMESPACE = uuid.UUID("8f6c2a9e-4a57-4f3e-9d0b-6e1b7c3a2d10")
METRICS = ("latency_ms", "total_tokens", "cost_usd")
SPIKE_TYPES = {
    "latency_ms": AnomalyType.LATENCY_SPIKE,
    "total_tokens": AnomalyType.TOKEN_USAGE_SPIKE,
    "cost_usd": AnomalyType.COST_ANOMALY,
}
DRIFT_TYPES = {  # the reference's mapping
    "latency_ms": AnomalyType.INPUT_DRIFT,
    "total_tokens": AnomalyType.INPUT_DRIFT,
    "cost_usd": AnomalyType.COST_ANOMALY,
}
REMEDIATION = {
    "latency_ms": [
        "Check service health and resource utilization",
        "Review recent deployments or configuration changes",
    ],
    "total_tokens": [
        "Review prompt templates for excessive verbosity",
        "Check for potential token abuse or prompt injection",
    ],
    "cost_usd": [
        "Review API usage patterns for cost optimization",
        "Consider rate limiting or budget alerts",
    ],
    "error_rate": [
        "Check the provider's status and error responses",
        "Review retries, timeouts and recent changes",
    ],
}


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Detector settings; the defaults are the reference's."""

    baseline_window: int = 1000
    min_samples: int = 10
    zscore_threshold: float = 3.0
    zscore_high: float = 4.0
    zscore_critical: float = 6.0
    iqr_multiplier: float = 1.5
    mad_enabled: bool = False
    mad_threshold: float = 3.5
    mad_refresh: int = 50  # recompute the (costly) MAD every N values
    cusum_threshold: float = 5.0
    cusum_slack: float = 0.5
    psi_moderate: float = 0.1
    psi_significant: float = 0.25
    psi_reference: int = 1000
    psi_current: int = 100
    psi_bins: int = 10
    psi_min_reference: int = 50
    error_window: int = 100
    error_z: float = 4.0
    error_min_rate: float = 0.1
    error_floor_rate: float = 0.01  # the baseline error rate assumed at least this
    dedup_seconds: float = 300.0
    relative_floor: float = 0.01
    max_keys: int = 10_000  # (service, model) pairs remembered; least recently seen go first


@dataclass(slots=True)
class Outcome:
    """What one event produced: every detection, and the alerts left after de-duplication."""

    detections: list[AnomalyEvent] = field(default_factory=list)
    alerts: list[AnomalyEvent] = field(default_factory=list)


Found = list[AnomalyEvent]


class _KeyState:
    """Everything the detectors remember about one (service, model)."""

    __slots__ = (
        "count",
        "cusum",
        "error_cooldown",
        "error_recent",
        "error_recent_sum",
        "errors",
        "errors_sum",
        "mad_cache",
        "psi_current",
        "psi_reference",
        "windows",
    )

    def __init__(self, settings: DetectorSettings) -> None:
        # only latency needs its values in order (IQR, MAD)
        self.windows = {
            m: RollingWindow(settings.baseline_window, ordered=m == "latency_ms") for m in METRICS
        }
        self.count = 0  # events seen
        self.cusum = 0.0
        self.psi_reference = {m: SortedWindow(settings.psi_reference) for m in METRICS}
        self.psi_current: dict[str, list[float]] = {m: [] for m in METRICS}
        self.errors: deque[int] = deque()  # the long window of 0/1
        self.errors_sum = 0
        self.error_recent: deque[int] = deque()
        self.error_recent_sum = 0
        self.error_cooldown = 0
        self.mad_cache = (0.0, -1)  # (value, length when computed)

    def to_state(self) -> dict[str, Any]:
        return {
            "windows": {m: w.to_state() for m, w in self.windows.items()},
            "cusum": self.cusum,
            "count": self.count,
            "psi_reference": {m: w.to_state() for m, w in self.psi_reference.items()},
            "psi_current": self.psi_current,
            "errors": list(self.errors),
            "error_recent": list(self.error_recent),
            "error_cooldown": self.error_cooldown,
            "mad_cache": list(self.mad_cache),
        }

    @classmethod
    def from_state(cls, settings: DetectorSettings, state: dict[str, Any]) -> _KeyState:
        key = cls(settings)
        key.windows = {
            m: RollingWindow.from_state(settings.baseline_window, s, ordered=m == "latency_ms")
            for m, s in state["windows"].items()
        }
        key.cusum = float(state["cusum"])
        key.count = int(state["count"])
        key.psi_reference = {
            m: SortedWindow.from_state(settings.psi_reference, s)
            for m, s in state["psi_reference"].items()
        }
        key.psi_current = {m: [float(v) for v in vs] for m, vs in state["psi_current"].items()}
        key.errors = deque(int(v) for v in state["errors"])
        key.errors_sum = sum(key.errors)
        key.error_recent = deque(int(v) for v in state["error_recent"])
        key.error_recent_sum = sum(key.error_recent)
        key.error_cooldown = int(state["error_cooldown"])
        key.mad_cache = (float(state["mad_cache"][0]), int(state["mad_cache"][1]))
        return key


def _severity(z: float, settings: DetectorSettings) -> Severity:
    if z >= settings.zscore_critical:
        return Severity.CRITICAL
    if z >= settings.zscore_high:
        return Severity.HIGH
    return Severity.MEDIUM


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


class Engine:
    """Runs every detector on each event, in order, and de-duplicates the alerts.

    >>> engine = Engine()
    >>> outcome = engine.process(event, source="llm-telemetry", position=0)  # doctest: +SKIP
    """

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DetectorSettings()
        self.keys: OrderedDict[tuple[str, str], _KeyState] = OrderedDict()
        self.clock = 0.0  # the latest event time seen (epoch seconds)
        self.last_alert: dict[tuple[str, str, str, str], float] = {}
        self.processed = 0

    # -- the pipeline ----------------------------------------------------------------------

    def process(self, event: TelemetryEvent, *, source: str, position: int) -> Outcome:
        """Check ``event`` against its baselines, then learn from it."""
        return self.process_call(Call.of(event), source=source, position=position)

    def process_call(self, call: Call, *, source: str, position: int) -> Outcome:
        """``process`` for what the detectors read of an event (the service's hot path)."""
        settings = self.settings
        key_id = (call.service, call.model)
        keys = self.keys
        key = keys.get(key_id)
        if key is None:
            key = keys[key_id] = _KeyState(settings)
            if len(keys) > settings.max_keys:
                keys.popitem(last=False)
        else:
            keys.move_to_end(key_id)
        if call.seconds > self.clock:
            self.clock = call.seconds
        self.processed += 1
        key.count += 1

        latency, tokens, cost = call.latency, call.tokens, call.cost
        found: list[AnomalyEvent] = []
        origin = _Origin(call, source, position)
        windows = key.windows
        latency_window = windows["latency_ms"]
        if len(latency_window) >= settings.min_samples:
            self._zscore(key, "latency_ms", latency, origin, found)
            self._zscore(key, "total_tokens", tokens, origin, found)
            self._zscore(key, "cost_usd", cost, origin, found)
            self._iqr(key, latency, origin, found)
            if settings.mad_enabled:
                self._mad(key, latency, origin, found)
            self._cusum(key, cost, origin, found)
        self._errors(key, call.failed, origin, found)
        self._psi(key, "latency_ms", latency, origin, found)
        self._psi(key, "total_tokens", tokens, origin, found)
        self._psi(key, "cost_usd", cost, origin, found)
        latency_window.push(latency)
        windows["total_tokens"].push(tokens)
        windows["cost_usd"].push(cost)

        outcome = Outcome(detections=found)
        if found:
            for anomaly in found:
                dedup_key = (
                    call.service,
                    call.model,
                    anomaly.anomaly_type.value,
                    anomaly.severity.value,
                )
                last = self.last_alert.get(dedup_key)
                if last is None or self.clock - last >= settings.dedup_seconds:
                    self.last_alert[dedup_key] = self.clock
                    outcome.alerts.append(anomaly)
        return outcome

    # -- detectors ---------------------------------------------------------------------------

    def _zscore(
        self, key: _KeyState, metric: str, value: float, origin: _Origin, found: Found
    ) -> None:
        settings = self.settings
        mean, std = key.windows[metric].mean_std()
        std = max(std, abs(mean) * settings.relative_floor, 1e-12)
        z = (value - mean) / std
        if z <= settings.zscore_threshold:
            return
        window = key.windows[metric]
        confidence = min(0.99, max(0.5, 1 - 1 / (1 + (z - settings.zscore_threshold))))
        found.append(
            origin.anomaly(
                detector="z_score",
                method=DetectionMethod.Z_SCORE,
                kind=SPIKE_TYPES[metric],
                severity=_severity(z, settings),
                confidence=confidence,
                details=AnomalyDetails(
                    metric=metric,
                    value=value,
                    baseline=mean,
                    threshold=mean + settings.zscore_threshold * std,
                    deviation_sigma=z,
                    additional={"std_dev": std},
                ),
                window="rolling_window",
                samples=len(window),
                root_cause=f"{metric} {value:.4g} is {z:.2f} standard deviations above "
                f"baseline {mean:.4g}",
                remediation=REMEDIATION[metric],
            )
        )

    def _iqr(
        self, key: _KeyState, value: float, origin: _Origin, found: list[AnomalyEvent]
    ) -> None:
        settings = self.settings
        window = key.windows["latency_ms"]
        q1, median, q3 = window.quantile(0.25), window.median, window.quantile(0.75)
        iqr = max(q3 - q1, abs(median) * settings.relative_floor, 1e-12)
        upper = q3 + settings.iqr_multiplier * iqr
        if value <= upper:
            return
        if value > q3 + 3.0 * iqr:
            severity = Severity.CRITICAL
        elif value > upper * 1.5:
            severity = Severity.HIGH
        else:
            severity = Severity.MEDIUM
        confidence = min(0.99, max(0.7, 0.7 + min((value - upper) / iqr, 3.0) * 0.1))
        found.append(
            origin.anomaly(
                detector="iqr",
                method=DetectionMethod.IQR,
                kind=AnomalyType.LATENCY_SPIKE,
                severity=severity,
                confidence=confidence,
                details=AnomalyDetails(
                    metric="latency_ms",
                    value=value,
                    baseline=median,
                    threshold=upper,
                    additional={
                        "q1": q1,
                        "q3": q3,
                        "iqr": iqr,
                        "lower_bound": q1 - settings.iqr_multiplier * iqr,
                        "upper_bound": upper,
                    },
                ),
                window="rolling_window",
                samples=len(window),
                root_cause=f"Latency {value:.2f}ms exceeds IQR bounds (median: {median:.2f}ms, "
                f"IQR: {iqr:.2f}ms)",
                remediation=["Check for resource contention or external dependencies"],
            )
        )

    def _mad(
        self, key: _KeyState, value: float, origin: _Origin, found: list[AnomalyEvent]
    ) -> None:
        settings = self.settings
        window = key.windows["latency_ms"]
        if len(window) < settings.min_samples:
            return
        mad, computed_at = key.mad_cache
        if computed_at < 0 or key.count - computed_at >= settings.mad_refresh:
            mad = window.mad()
            key.mad_cache = (mad, key.count)
        median = window.median
        mad = max(mad, abs(median) * settings.relative_floor, 1e-12)
        score = 0.6745 * (value - median) / mad
        if score <= settings.mad_threshold:
            return
        found.append(
            origin.anomaly(
                detector="mad",
                method=DetectionMethod.MAD,
                kind=AnomalyType.LATENCY_SPIKE,
                severity=_severity(
                    score * settings.zscore_threshold / settings.mad_threshold, settings
                ),
                confidence=min(0.99, max(0.5, 1 - 1 / (1 + score - settings.mad_threshold))),
                details=AnomalyDetails(
                    metric="latency_ms",
                    value=value,
                    baseline=median,
                    threshold=median + settings.mad_threshold * mad / 0.6745,
                    deviation_sigma=score,
                    additional={"mad": mad},
                ),
                window="rolling_window",
                samples=len(window),
                root_cause=f"Latency {value:.2f}ms has a modified z-score of {score:.2f}",
                remediation=["Check for resource contention or external dependencies"],
            )
        )

    def _cusum(
        self, key: _KeyState, value: float, origin: _Origin, found: list[AnomalyEvent]
    ) -> None:
        settings = self.settings
        window = key.windows["cost_usd"]
        mean, std = window.mean_std()
        std = max(std, abs(mean) * settings.relative_floor, 1e-12)
        step = min((value - mean) / std, settings.zscore_threshold)
        key.cusum = max(0.0, key.cusum + step - settings.cusum_slack)
        if key.cusum <= settings.cusum_threshold:
            return
        total = key.cusum
        severity = Severity.HIGH if total > 2 * settings.cusum_threshold else Severity.MEDIUM
        found.append(
            origin.anomaly(
                detector="cusum",
                method=DetectionMethod.CUSUM,
                kind=AnomalyType.COST_ANOMALY,
                severity=severity,
                confidence=min(0.95, total / settings.cusum_threshold),
                details=AnomalyDetails(
                    metric="cost_usd",
                    value=value,
                    baseline=mean,
                    threshold=mean + settings.cusum_slack * std,
                    additional={"cusum": total, "std_dev": std},
                ),
                window="cumulative",
                samples=len(window),
                root_cause=f"Sustained cost increase detected (CUSUM: {total:.2f} sigma, "
                f"baseline: ${mean:.4f})",
                remediation=[
                    "Review recent API usage patterns",
                    "Check for model version changes or pricing updates",
                ],
            )
        )
        key.cusum = 0.0

    def _errors(
        self, key: _KeyState, failed: int, origin: _Origin, found: list[AnomalyEvent]
    ) -> None:
        settings = self.settings
        size = settings.error_window
        recent = key.error_recent
        recent.append(failed)
        key.error_recent_sum += failed
        if len(recent) > size:
            moved = recent.popleft()
            key.error_recent_sum -= moved
            key.errors.append(moved)
            key.errors_sum += moved
            if len(key.errors) > settings.baseline_window - size:
                key.errors_sum -= key.errors.popleft()
        if key.error_cooldown > 0:
            key.error_cooldown -= 1
            return
        if len(recent) < size or len(key.errors) < settings.min_samples:
            return
        rate = key.error_recent_sum / size
        base = max(key.errors_sum / len(key.errors), settings.error_floor_rate)
        z = (rate - base) / math.sqrt(base * (1 - base) / size)
        if z <= settings.error_z or rate < settings.error_min_rate:
            return
        key.error_cooldown = size
        found.append(
            origin.anomaly(
                detector="error_rate",
                method=DetectionMethod.Z_SCORE,
                kind=AnomalyType.ERROR_RATE_INCREASE,
                severity=_severity(z, settings),
                confidence=min(0.99, max(0.5, 1 - 1 / (1 + (z - settings.error_z)))),
                details=AnomalyDetails(
                    metric="error_rate",
                    value=rate,
                    baseline=base,
                    threshold=base + settings.error_z * math.sqrt(base * (1 - base) / size),
                    deviation_sigma=z,
                    additional={"window": size, "errors": key.error_recent_sum},
                ),
                window=f"last_{size}_calls",
                samples=len(key.errors),
                root_cause=f"{key.error_recent_sum} of the last {size} calls failed "
                f"(baseline rate {base:.1%})",
                remediation=REMEDIATION["error_rate"],
            )
        )

    def _psi(
        self, key: _KeyState, metric: str, value: float, origin: _Origin, found: Found
    ) -> None:
        settings = self.settings
        current = key.psi_current[metric]
        current.append(value)
        if len(current) < settings.psi_current:
            return
        reference = key.psi_reference[metric]
        try:
            if len(reference) < settings.psi_min_reference:
                return
            self._psi_check(reference, current, metric, origin, found)
        finally:
            reference.extend(current)
            current.clear()

    def _psi_check(
        self,
        reference: SortedWindow,
        current: list[float],
        metric: str,
        origin: _Origin,
        found: Found,
    ) -> None:
        settings = self.settings
        ordered = reference.ordered
        bins = settings.psi_bins
        edges = sorted({quantile(ordered, i / bins) for i in range(1, bins)})
        counts_ref = [0] * (len(edges) + 1)
        previous = 0
        for index, edge in enumerate(edges):
            below = bisect_right(ordered, edge)
            counts_ref[index] = below - previous
            previous = below
        counts_ref[-1] = len(ordered) - previous
        counts_cur = [0] * (len(edges) + 1)
        for item in current:
            counts_cur[bisect_right(edges, item)] += 1
        n, m = len(current), len(ordered)
        epsilon = 1e-4
        psi = 0.0
        for ref_count, cur_count in zip(counts_ref, counts_cur, strict=True):
            r = max(ref_count / m, epsilon)
            c = max(cur_count / n, epsilon)
            psi += (c - r) * math.log(c / r)
        expected = (len(edges)) * (1 / n + 1 / m)
        excess = psi - expected
        if excess < settings.psi_moderate:
            return
        if excess >= 2 * settings.psi_significant:
            severity = Severity.CRITICAL
        elif excess >= settings.psi_significant:
            severity = Severity.HIGH
        else:
            severity = Severity.MEDIUM
        normalized = min(excess / settings.psi_significant, 1.0)
        confidence = min(0.99, 1 / (1 + math.exp(-5 * (normalized - 0.5))))
        ref_mean = reference.mean()
        cur_mean = sum(current) / n
        found.append(
            origin.anomaly(
                detector="psi",
                method=DetectionMethod.PSI,
                kind=DRIFT_TYPES[metric],
                severity=severity,
                confidence=confidence,
                details=AnomalyDetails(
                    metric=metric,
                    value=cur_mean,
                    baseline=ref_mean,
                    threshold=settings.psi_moderate,
                    additional={
                        "psi": psi,
                        "psi_excess": excess,
                        "psi_expected": expected,
                        "bins": len(edges) + 1,
                        "reference_samples": m,
                        "current_samples": n,
                        "direction": "positive" if cur_mean >= ref_mean else "negative",
                    },
                ),
                window=f"last_{n}_vs_previous_{m}",
                samples=m,
                root_cause=f"The distribution of {metric} shifted (PSI {psi:.3f}, "
                f"{excess:.3f} above chance) over the last {n} calls",
                remediation=REMEDIATION[metric],
            )
        )

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this engine is."""
        return {
            "version": 1,
            "clock": self.clock,
            "processed": self.processed,
            "last_alert": [[*k, v] for k, v in self.last_alert.items()],
            "keys": [[s, m, state.to_state()] for (s, m), state in self.keys.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: DetectorSettings | None = None) -> Engine:
        engine = cls(settings)
        engine.clock = float(state["clock"])
        engine.processed = int(state["processed"])
        engine.last_alert = {(s, m, t, v): float(at) for s, m, t, v, at in state["last_alert"]}
        for service, model, key_state in state["keys"]:
            engine.keys[(service, model)] = _KeyState.from_state(engine.settings, key_state)
        return engine


class Call:
    """What the detectors read of one telemetry event. The service builds it straight from the
    parsed JSON (``_validation.fast_call``); ``Call.of`` takes a ``TelemetryEvent``."""

    __slots__ = (
        "cost",
        "event_id",
        "failed",
        "latency",
        "metadata",
        "model",
        "seconds",
        "service",
        "tokens",
        "trace_id",
        "when",
    )

    def __init__(
        self,
        service: str,
        model: str,
        latency: float,
        tokens: float,
        cost: float,
        failed: int,
        when: datetime,
        trace_id: str | None,
        metadata: dict[str, str],
        event_id: str,
    ) -> None:
        self.service = service
        self.model = model
        self.latency = latency
        self.tokens = tokens
        self.cost = cost
        self.failed = failed
        self.when = when  # naive UTC, as TelemetryEvent keeps it
        self.seconds = (when - _EPOCH).total_seconds()
        self.trace_id = trace_id
        self.metadata = metadata
        self.event_id = event_id

    @classmethod
    def of(cls, event: TelemetryEvent) -> Call:
        when = event.timestamp
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        return cls(
            event.service_name,
            event.model,
            float(event.latency_ms),
            float(event.total_tokens()),
            float(event.cost_usd),
            1 if event.errors else 0,
            when,
            event.trace_id,
            event.metadata,
            str(event.event_id),
        )


_EPOCH = datetime(1970, 1, 1)


class _Origin:
    """The call a detection comes from, and how its anomaly is filled in."""

    __slots__ = ("call", "position", "source")

    def __init__(self, call: Call, source: str, position: int) -> None:
        self.call = call
        self.source = source
        self.position = position

    def anomaly(
        self,
        *,
        detector: str,
        method: DetectionMethod,
        kind: AnomalyType,
        severity: Severity,
        confidence: float,
        details: AnomalyDetails,
        window: str,
        samples: int,
        root_cause: str,
        remediation: list[str],
    ) -> AnomalyEvent:
        call = self.call
        details.value = _finite(details.value)
        details.baseline = _finite(details.baseline)
        details.threshold = _finite(details.threshold)
        if details.deviation_sigma is not None:
            details.deviation_sigma = _finite(details.deviation_sigma)
        details.additional["detector"] = detector
        name = f"{self.source}:{self.position}:{detector}:{details.metric}"
        return AnomalyEvent(
            alert_id=uuid.uuid5(ALERT_NAMESPACE, name),
            timestamp=call.when,
            severity=severity,
            anomaly_type=kind,
            service_name=call.service,
            model=call.model,
            detection_method=method,
            confidence=_finite(confidence),
            details=details,
            context=AnomalyContext(
                trace_id=call.trace_id,
                user_id=call.metadata.get("user_id"),
                region=call.metadata.get("region"),
                time_window=window,
                sample_count=samples,
                additional={
                    "event_id": call.event_id,
                    "source": self.source,
                    "offset": str(self.position),
                },
            ),
            root_cause=root_cause,
            remediation=list(remediation),
        )
