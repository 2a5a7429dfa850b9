"""Async usage of millstream's Sentinel SDK (seed 003's async example, only the import changed).

Run `make serve` first (Kafka on localhost:9092), or set SENTINEL_BROKERS.
"""

import asyncio
import os

from millstream.telemetry import AsyncSentinelClient

BROKERS = os.environ.get("SENTINEL_BROKERS", "localhost:9092").split(",")


async def main() -> None:
    """Track several requests concurrently."""
    async with AsyncSentinelClient(brokers=BROKERS) as client:
        tasks = [
            client.track(
                service="async-example-service",
                model="gpt-4",
                prompt=f"Request {i + 1}",
                response=f"Response {i + 1}",
                latency_ms=100.0 + i * 10,
                prompt_tokens=5,
                completion_tokens=10,
                cost_usd=0.001,
                metadata={"request_id": str(i + 1)},
            )
            for i in range(5)
        ]
        await asyncio.gather(*tasks)
        print(f"✓ Sent {len(tasks)} events concurrently!")


async def main_with_error_handling() -> None:
    """Wait for the broker's ack (blocking=True) and handle each error kind."""
    from millstream.telemetry import SendError, TimeoutError, ValidationError

    async with AsyncSentinelClient(brokers=BROKERS, blocking=True) as client:
        try:
            await client.track(
                service="async-example-service",
                model="gpt-4",
                prompt="Test request",
                response="Test response",
                latency_ms=150.0,
                prompt_tokens=5,
                completion_tokens=10,
                cost_usd=0.001,
                timeout=5.0,
            )
            print("✓ Event acknowledged by the broker")
        except ValidationError as e:
            print(f"✗ Validation error: {e}")
        except TimeoutError as e:
            print(f"✗ Timeout error: {e}")
        except SendError as e:
            print(f"✗ Send error: {e}")


if __name__ == "__main__":
    print("Example 1: Concurrent requests")
    asyncio.run(main())
    print("\nExample 2: With error handling")
    asyncio.run(main_with_error_handling())
