"""The string enums of the Sentinel schema: severities (ordered), anomaly types, methods.

Each member *is* its wire string (``Severity.HIGH == "high"``), so events and anomalies
serialize with plain ``json`` and compare with the strings other consumers use.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["AnomalyType", "DetectionMethod", "Severity"]


class Severity(StrEnum):
    """How urgent an anomaly is; ordered ``LOW < MEDIUM < HIGH < CRITICAL`` (also against the
    wire strings: ``Severity.HIGH > "low"`` compares ranks, not letters)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ``LOW`` up to 3 for ``CRITICAL``."""
        return _SEVERITY_RANK[self]

    @staticmethod
    def _rank_of(other: Any) -> int | None:
        """Rank of another severity, or of its wire string (``"high"``); else ``None``."""
        if isinstance(other, str) and other in _SEVERITY_VALUES:
            return _SEVERITY_RANK[Severity(other)]
        return None

    def __lt__(self, other: Any) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.rank < rank

    def __le__(self, other: Any) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.rank <= rank

    def __gt__(self, other: Any) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.rank > rank

    def __ge__(self, other: Any) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.rank >= rank


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
_SEVERITY_VALUES = frozenset(s.value for s in Severity)


class AnomalyType(StrEnum):
    """What kind of anomaly was detected."""

    LATENCY_SPIKE = "latency_spike"
    THROUGHPUT_DEGRADATION = "throughput_degradation"
    ERROR_RATE_INCREASE = "error_rate_increase"
    TOKEN_USAGE_SPIKE = "token_usage_spike"
    COST_ANOMALY = "cost_anomaly"
    INPUT_DRIFT = "input_drift"
    OUTPUT_DRIFT = "output_drift"
    CONCEPT_DRIFT = "concept_drift"
    EMBEDDING_DRIFT = "embedding_drift"
    HALLUCINATION = "hallucination"
    QUALITY_DEGRADATION = "quality_degradation"
    SECURITY_THREAT = "security_threat"


class DetectionMethod(StrEnum):
    """The algorithm that flagged an anomaly."""

    Z_SCORE = "z_score"
    IQR = "iqr"
    MAD = "mad"
    CUSUM = "cusum"
    ISOLATION_FOREST = "isolation_forest"
    LSTM_AUTOENCODER = "lstm_autoencoder"
    ONE_CLASS_SVM = "one_class_svm"
    PSI = "psi"
    KL_DIVERGENCE = "kl_divergence"
    LLM_CHECK = "llm_check"
    RAG = "rag"
