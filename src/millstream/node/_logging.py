"""``millstream serve``'s log lines on stderr: text, or one JSON object per line.

JSON lines carry ``time``, ``level``, ``logger`` and ``message``, and the request's context
when there is one: ``request_id`` (the client's ``X-Request-Id`` or a fresh one; refusals
echo it in their answer), ``client``, ``principal``, ``door``, ``reason`` and, for access-log
lines (``--access-log``), ``method``, ``path``, ``status`` and ``duration_ms``. uvicorn's own
lines go through the same handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import orjson

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "configure_logging"]

#: ``extra=`` fields a log call may pass; JSON lines include those that are set.
CONTEXT_FIELDS = (
    "request_id",
    "client",
    "principal",
    "door",
    "reason",
    "method",
    "path",
    "status",
    "duration_ms",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure_logging(log_format: str = "text", level: str = "info") -> None:
    """Send every log line (millstream's and uvicorn's) to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("millstream").setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
