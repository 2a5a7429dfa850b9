"""Scenario modules; importing this package registers every scenario in ``REGISTRY``.

Each protocol has one module here (``durable_streams``, ``kafka``) whose scenarios call
``register`` at import time, and one import line below.
"""

from benchmarks.scenarios import durable_streams, kafka, kafka_sdk, sse_apps

__all__ = ["durable_streams", "kafka", "kafka_sdk", "sse_apps"]
