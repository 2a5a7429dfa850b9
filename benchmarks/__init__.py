"""millstream's benchmark harness: every server against every scenario of its protocol, one run.

Layers, top down: ``__main__`` (the command) drives ``_harness``, which starts each server
described in ``_servers`` in turn and runs each scenario registered in ``scenarios`` as a
separate load-generator process (``loadgen``); ``_report`` turns the results into one table,
JSON and Markdown. A new protocol (Kafka) adds a scenario module and server specs; nothing else.
"""
