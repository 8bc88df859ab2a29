"""One log format for every hookstream process: a timestamped line with `key=value` context.

Call sites pass context as `extra={"source": ..., "reason": ...}`; only the keys of `CONTEXT_KEYS` are
printed, so a careless `extra` can never leak a body, a header or a secret into the log.
"""

from __future__ import annotations

import logging
import sys

CONTEXT_KEYS = (
    "source",
    "route",
    "reason",
    "status",
    "event_id",
    "event_type",
    "topic",
    "partition",
    "offset",
    "request_id",
    "url",
    "sources",
    "count",
    "records_read",
    "resumed_at",
    "error",
)


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{key}={getattr(record, key)}" for key in CONTEXT_KEYS if hasattr(record, key))
        return f"{line} {context}" if context else line


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
