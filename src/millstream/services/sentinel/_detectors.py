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

from ._window import METRICS, Baselines, SortedWindow, quantile

__all__ = ["Call", "DetectorSettings", "Engine", "Outcome"]

ALERT_NAMESPACE = uuid.UUID("8f6c2a9e-4a57-4f3e-9d0b-6e1b7c3a2d10")
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
        "baselines",
        "count",
        "cusum",
        "error_cooldown",
        "error_recent",
        "error_recent_sum",
        "errors",
        "errors_sum",
        "mad_cache",
        "psi_cost",
        "psi_current",
        "psi_latency",
        "psi_reference",
        "psi_tokens",
    )

    # the lists of ``psi_current``, by name, for the hot path
    psi_latency: list[float]
    psi_tokens: list[float]
    psi_cost: list[float]

    def __init__(self, settings: DetectorSettings) -> None:
        self.baselines = Baselines(settings.baseline_window)
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
        self._bind()

    def _bind(self) -> None:
        current = self.psi_current
        self.psi_latency, self.psi_tokens, self.psi_cost = (current[m] for m in METRICS)

    def to_state(self) -> dict[str, Any]:
        return {
            "windows": self.baselines.to_state(),
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
        key.baselines = Baselines.from_state(settings.baseline_window, state["windows"])
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
        key._bind()
        return key


def _severity(z: float, settings: DetectorSettings) -> Severity:
    if z >= settings.zscore_critical:
        return Severity.CRITICAL
    if z >= settings.zscore_high:
        return Severity.HIGH
    return Severity.MEDIUM


def _mean_std(total: float, squares: float, count: int, floor: float) -> tuple[float, float]:
    """Mean and population deviation from running sums, the deviation at least ``floor`` of
    the mean and 1e-12: ``max(std, |mean| * floor, 1e-12)`` as comparisons."""
    mean = total / count
    variance = squares / count - mean * mean
    std = math.sqrt(variance) if variance > 0.0 else 0.0
    if (scale := abs(mean) * floor) > std:
        std = scale
    if std < 1e-12:
        std = 1e-12
    return mean, std


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


class Engine:
    """Runs every detector on each event, in order, and de-duplicates the alerts.

    >>> engine = Engine()
    >>> outcome = engine.process(event, source="llm-telemetry", position=0)  # doctest: +SKIP

    The per-event path (``_detect``) only computes what decides whether a detector fires,
    from running sums and sorted windows; an anomaly is built (``_zscore``, ``_iqr``, ...)
    only when one does, from the numbers already computed.
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
        """``process`` for what the detectors read of an event."""
        found = self._detect(call, source, position)
        if not found:
            return Outcome()
        return Outcome(detections=found, alerts=self._deduplicate(call, found))

    def alerts(self, call: Call, *, source: str, position: int) -> list[AnomalyEvent]:
        """The alerts of ``process_call`` alone: the service's hot path."""
        found = self._detect(call, source, position)
        return self._deduplicate(call, found) if found else found

    def _detect(self, call: Call, source: str, position: int) -> list[AnomalyEvent]:
        """Every detection for ``call`` (the detectors in their documented order), then the
        baselines learn it.

        The Sentinel's hot path, written out in line: the three z-scores (``_mean_std`` of
        running sums), the quartiles, CUSUM and the error-rate window. Each number is computed
        exactly as the detector's own definition in the module docstring
        (``max(std, |mean| * relative_floor, 1e-12)`` and so on, as comparisons).
        """
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
        at = (call, source, position)
        baselines = key.baselines
        samples = len(baselines.calls)
        if samples >= settings.min_samples:
            floor, threshold = settings.relative_floor, settings.zscore_threshold
            # z-score of each metric: mean, population deviation, floored
            mean, std = _mean_std(baselines.latency_sum, baselines.latency_sq, samples, floor)
            if (latency - mean) / std > threshold:
                self._zscore(at, found, "latency_ms", latency, mean, std, samples)
            mean, std = _mean_std(baselines.tokens_sum, baselines.tokens_sq, samples, floor)
            if (tokens - mean) / std > threshold:
                self._zscore(at, found, "total_tokens", tokens, mean, std, samples)
            mean, std = _mean_std(baselines.cost_sum, baselines.cost_sq, samples, floor)
            step = (cost - mean) / std
            if step > threshold:
                self._zscore(at, found, "cost_usd", cost, mean, std, samples)
            # IQR of latency (the quartiles as ``quantile`` interpolates them)
            ordered = baselines.ordered
            q1 = quantile(ordered, 0.25)
            median = quantile(ordered, 0.5)
            q3 = quantile(ordered, 0.75)
            iqr = q3 - q1
            if (scale := abs(median) * floor) > iqr:
                iqr = scale
            if iqr < 1e-12:
                iqr = 1e-12
            if latency > q3 + settings.iqr_multiplier * iqr:
                self._iqr(at, found, latency, q1, median, q3, iqr, samples)
            if settings.mad_enabled:
                self._mad(at, found, key, latency)
            # CUSUM of standardized cost (the cost z-score's mean and deviation), each call
            # contributing at most the z-score threshold
            if step > threshold:
                step = threshold
            cusum = key.cusum + step - settings.cusum_slack
            key.cusum = cusum = cusum if cusum > 0.0 else 0.0
            if cusum > settings.cusum_threshold:
                self._cusum(at, found, cost, mean, std, cusum, samples)
                key.cusum = 0.0
        # error rate: the last ``error_window`` calls (sliding with every call) against the
        # calls before them, as a binomial z-score
        size = settings.error_window
        recent, errors = key.error_recent, key.errors
        failed = call.failed
        recent.append(failed)
        key.error_recent_sum += failed
        if len(recent) > size:
            moved = recent.popleft()
            key.error_recent_sum -= moved
            errors.append(moved)
            key.errors_sum += moved
            if len(errors) > settings.baseline_window - size:
                key.errors_sum -= errors.popleft()
        if key.error_cooldown > 0:
            key.error_cooldown -= 1
        elif len(recent) >= size and len(errors) >= settings.min_samples:
            rate = key.error_recent_sum / size
            base = key.errors_sum / len(errors)
            if base < settings.error_floor_rate:
                base = settings.error_floor_rate
            z = (rate - base) / math.sqrt(base * (1 - base) / size)
            if z > settings.error_z and rate >= settings.error_min_rate:
                self._errors(at, found, key, rate, base, z)
        # PSI: each metric's current window, compared with its reference when complete
        psi_size = settings.psi_current
        current = key.psi_latency
        current.append(latency)
        if len(current) >= psi_size:
            self._psi(at, found, key, "latency_ms", current)
        current = key.psi_tokens
        current.append(tokens)
        if len(current) >= psi_size:
            self._psi(at, found, key, "total_tokens", current)
        current = key.psi_cost
        current.append(cost)
        if len(current) >= psi_size:
            self._psi(at, found, key, "cost_usd", current)
        baselines.push(latency, tokens, cost)
        return found

    def _deduplicate(self, call: Call, found: list[AnomalyEvent]) -> list[AnomalyEvent]:
        """The detections not alerted for this (service, model, type, severity) in the last
        ``dedup_seconds`` of event time."""
        alerts: list[AnomalyEvent] = []
        for anomaly in found:
            dedup_key = (
                call.service,
                call.model,
                anomaly.anomaly_type.value,
                anomaly.severity.value,
            )
            last = self.last_alert.get(dedup_key)
            if last is None or self.clock - last >= self.settings.dedup_seconds:
                self.last_alert[dedup_key] = self.clock
                alerts.append(anomaly)
        return alerts

    # -- detectors: what each reports when it fires -----------------------------------------

    def _zscore(
        self,
        at: _At,
        found: Found,
        metric: str,
        value: float,
        mean: float,
        std: float,
        samples: int,
    ) -> None:
        settings = self.settings
        z = (value - mean) / std
        confidence = min(0.99, max(0.5, 1 - 1 / (1 + (z - settings.zscore_threshold))))
        found.append(
            _anomaly(
                at,
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
                samples=samples,
                root_cause=f"{metric} {value:.4g} is {z:.2f} standard deviations above "
                f"baseline {mean:.4g}",
                remediation=REMEDIATION[metric],
            )
        )

    def _iqr(
        self,
        at: _At,
        found: Found,
        value: float,
        q1: float,
        median: float,
        q3: float,
        iqr: float,
        samples: int,
    ) -> None:
        settings = self.settings
        upper = q3 + settings.iqr_multiplier * iqr
        if value > q3 + 3.0 * iqr:
            severity = Severity.CRITICAL
        elif value > upper * 1.5:
            severity = Severity.HIGH
        else:
            severity = Severity.MEDIUM
        confidence = min(0.99, max(0.7, 0.7 + min((value - upper) / iqr, 3.0) * 0.1))
        found.append(
            _anomaly(
                at,
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
                samples=samples,
                root_cause=f"Latency {value:.2f}ms exceeds IQR bounds (median: {median:.2f}ms, "
                f"IQR: {iqr:.2f}ms)",
                remediation=["Check for resource contention or external dependencies"],
            )
        )

    def _mad(self, at: _At, found: Found, key: _KeyState, value: float) -> None:
        settings = self.settings
        window = key.baselines
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
            _anomaly(
                at,
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
        self,
        at: _At,
        found: Found,
        value: float,
        mean: float,
        std: float,
        total: float,
        samples: int,
    ) -> None:
        settings = self.settings
        severity = Severity.HIGH if total > 2 * settings.cusum_threshold else Severity.MEDIUM
        found.append(
            _anomaly(
                at,
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
                samples=samples,
                root_cause=f"Sustained cost increase detected (CUSUM: {total:.2f} sigma, "
                f"baseline: ${mean:.4f})",
                remediation=[
                    "Review recent API usage patterns",
                    "Check for model version changes or pricing updates",
                ],
            )
        )

    def _errors(
        self, at: _At, found: Found, key: _KeyState, rate: float, base: float, z: float
    ) -> None:
        settings = self.settings
        size = settings.error_window
        key.error_cooldown = size
        found.append(
            _anomaly(
                at,
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
        self, at: _At, found: Found, key: _KeyState, metric: str, current: list[float]
    ) -> None:
        """A completed current window: compare it with the reference, then let it join."""
        reference = key.psi_reference[metric]
        try:
            if len(reference) < self.settings.psi_min_reference:
                return
            self._psi_check(at, found, reference, current, metric)
        finally:
            reference.extend(current)
            current.clear()

    def _psi_check(
        self,
        at: _At,
        found: Found,
        reference: SortedWindow,
        current: list[float],
        metric: str,
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
            _anomaly(
                at,
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


_At = tuple[Call, str, int]  # the call a detection comes from, its source and position


def _anomaly(
    at: _At,
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
    """The anomaly event of one detection of the call ``at`` (its id derives from the source
    position, so a replay makes the same one)."""
    call, source, position = at
    details.value = _finite(details.value)
    details.baseline = _finite(details.baseline)
    details.threshold = _finite(details.threshold)
    if details.deviation_sigma is not None:
        details.deviation_sigma = _finite(details.deviation_sigma)
    details.additional["detector"] = detector
    name = f"{source}:{position}:{detector}:{details.metric}"
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
                "source": source,
                "offset": str(position),
            },
        ),
        root_cause=root_cause,
        remediation=list(remediation),
    )
