"""One consumer's hook into aiokafka's record construction: its fetcher makes the SDK's
``ConsumerRecord``s instead of aiokafka's, so ``poll`` and ``async for`` hand them out as they
come, with no second object per record (which cost about a third of aiokafka's own CPU per
record, mostly in the garbage collector; see docs/kafka-sdk.md, Performance).

aiokafka (0.12 to 0.14) decodes a fetched partition into a ``PartitionRecords``, which makes
each record by calling ``self._consumer_record(tp, record)``, and stores it, wrapped in a
``FetchResult``, in the fetcher's ``_records`` dict. The hook replaces that dict (of this
consumer's fetcher only) with one that gives every new ``PartitionRecords`` the SDK's record
factory as its own ``_consumer_record``. Other consumers in the process are untouched.

These are aiokafka internals: ``install`` checks each one it relies on and, when one is missing,
leaves the consumer as it is and returns False; the consumer then converts aiokafka's records
(correct, a little slower). ``tests/kafka_sdk/test_records.py`` fails if the hook stops
installing on a supported aiokafka.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["install"]

try:
    from aiokafka.consumer import fetcher as _fetcher
except ImportError:  # pragma: no cover - an aiokafka without this module: no hook
    _fetcher = None
FetchResult: Any = getattr(_fetcher, "FetchResult", None)
PartitionRecords: Any = getattr(_fetcher, "PartitionRecords", None)


class _HookedRecords(OrderedDict[Any, Any]):
    """The fetcher's buffer of fetched partitions; sets the record factory on each new one."""

    def __init__(self, build: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.build = build

    def __setitem__(self, tp: Any, result: Any) -> None:
        if type(result) is FetchResult:
            records: Any = getattr(result, "_partition_records", None)
            if type(records) is PartitionRecords:
                records._consumer_record = self.build
        super().__setitem__(tp, result)


def install(consumer: Any, build: Callable[[Any, Any], Any]) -> bool:
    """Make ``consumer``'s records with ``build(tp, record)``; False if this aiokafka does not
    allow it (nothing changed then). Call right after ``start()``, before the first fetch."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    records = getattr(fetcher, "_records", None)
    if (
        PartitionRecords is None
        or not callable(getattr(PartitionRecords, "_consumer_record", None))
        or type(records) is not OrderedDict
    ):
        return False
    hooked = _HookedRecords(build)
    for tp, result in records.items():  # fetched already: aiokafka's records (converted)
        OrderedDict.__setitem__(hooked, tp, result)
    fetcher._records = hooked
    return True
