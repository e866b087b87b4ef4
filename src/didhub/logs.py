"""Log lines: JSON objects or text, each carrying the request id of the
request it was written in (``X-Request-ID``, docs/operations.md).

The request id lives in a context variable set by the API's middleware
(``didhub.api.observe``); a thread that serves the request (FastAPI runs
endpoints in a thread pool, which copies the context) sees the same id. A
line written outside any request (a periodic job, start-up) has ``-``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("didhub_request_id", default=None)

# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, any
    ``extra=`` fields, and the traceback as ``exc_info`` text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get() or "-",
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def uvicorn_config(fmt: str, level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run(log_config=…)``: the
    server's, uvicorn's and the access log's lines all in the one format."""
    factory = {"()": "didhub.logs.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "didhub.logs.RequestIdFilter"}},
        "formatters": {"didhub": factory},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "didhub",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "didhub": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def configure(fmt: str, level: str = "INFO") -> None:
    """The same, for a process that isn't uvicorn (``didhub worker``)."""
    import logging.config

    config = uvicorn_config(fmt, level)
    config["handlers"]["stderr"]["stream"] = sys.stderr
    logging.config.dictConfig(config)
