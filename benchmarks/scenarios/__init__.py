"""Scenario modules; importing this package registers every scenario in ``REGISTRY``.

A protocol adds one module here (``durable_streams`` now, ``kafka`` next) whose scenarios call
``register`` at import time, and one import line below.
"""

from benchmarks.scenarios import durable_streams, kafka_sdk, sse_apps

__all__ = ["durable_streams", "kafka_sdk", "sse_apps"]
