"""JSON log lines carrying the request id of the request that produced them."""

import json
import logging
import re
import sys
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


_QUERY = re.compile(r"\?[^\s\"']*")


def without_query(text: str) -> str:
    """A log text with every URL query string cut: a secret someone put in a query string
    (where the contract says it never goes) must not land in a log anyway."""
    return _QUERY.sub("?…", text)


class NoQueryStrings(logging.Filter):
    """Rewrites uvicorn's own lines (e.g. `"WebSocket /ws/chat/…?x=…" [accepted]`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "?" in record.getMessage():
            record.msg, record.args = without_query(record.getMessage()), None
        return True


def setup_logging(service: str, level: str = "INFO") -> None:
    import time

    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(NoQueryStrings())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
