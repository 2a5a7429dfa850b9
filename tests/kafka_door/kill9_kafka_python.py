"""kafka-python's default producer (idempotent, acks=all) for the ``kill -9`` test, in a process
of its own: kafka-python 3.0 leaks a socket object per refused connect, and those would be
finalised (and reported) long after the test, so it runs apart from pytest.

``python kill9_kafka_python.py BOOTSTRAP TOPIC PARTITIONS NAME`` sends ``NAME-i`` to partition
``i % PARTITIONS``, at most 200 outstanding, until a line arrives on stdin; then it flushes.
Every answer is one line on stdout: ``A i partition offset`` (acknowledged) or ``F i error``;
the last line is ``DONE sent``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

from kafka import KafkaProducer


def main() -> None:
    bootstrap, topic, partitions, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    producer = KafkaProducer(bootstrap_servers=bootstrap, reconnect_backoff_max_ms=500, linger_ms=2)
    futures: list[Any] = []
    sent = 0
    while not stop.is_set():
        future = producer.send(
            topic, value=f"{name}-{sent:07d}".encode(), partition=sent % partitions
        )
        future.add_callback(lambda meta, i=sent: say(f"A {i} {meta.partition} {meta.offset}"))
        future.add_errback(lambda exc, i=sent: say(f"F {i} {exc!r}"))
        futures.append(future)
        sent += 1
        if len(futures) >= 200:  # at most 200 outstanding: wait for the older half
            for older in futures[:100]:
                with contextlib.suppress(Exception):  # the errback reported it
                    older.get(timeout=90)
            del futures[:100]
    producer.flush(timeout=90)
    producer.close(timeout=10)
    say(f"DONE {sent}")


if __name__ == "__main__":
    main()
