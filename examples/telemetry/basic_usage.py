"""Basic usage of millstream's Sentinel SDK (seed 003's basic example, only the import changed).

Run `make serve` first (Kafka on localhost:9092), or set SENTINEL_BROKERS.
"""

import os

from millstream.telemetry import SentinelClient

BROKERS = os.environ.get("SENTINEL_BROKERS", "localhost:9092").split(",")


def main() -> None:
    """Demonstrate basic SDK usage."""
    client = SentinelClient(brokers=BROKERS)

    client.track(
        service="example-service",
        model="gpt-4",
        prompt="What is the capital of France?",
        response="The capital of France is Paris.",
        latency_ms=150.5,
        prompt_tokens=8,
        completion_tokens=7,
        cost_usd=0.001,
    )
    print("✓ Event queued")

    client.close()  # delivers what is queued (or spools it if the broker is down)
    print(f"✓ Delivered: {client.stats().sent} sent, {client.stats().dropped} dropped")


def main_with_context_manager() -> None:
    """Demonstrate usage with a context manager (recommended)."""
    with SentinelClient(brokers=BROKERS) as client:
        client.track(
            service="example-service",
            model="gpt-4",
            prompt="Explain quantum computing in simple terms.",
            response="Quantum computing uses quantum mechanics...",
            latency_ms=250.0,
            prompt_tokens=15,
            completion_tokens=50,
            cost_usd=0.005,
            metadata={"region": "us-east-1", "environment": "production"},
        )
    print("✓ Event sent with a context manager")


if __name__ == "__main__":
    print("Example 1: Basic usage")
    main()
    print("\nExample 2: With context manager")
    main_with_context_manager()
