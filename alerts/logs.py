"""Logging set-up: readable lines on a terminal, JSON lines when ALERTS_LOG_JSON=true.

Secrets never reach the log: settings are only ever logged through Settings.masked(), and
this filter masks credentials in URLs that some library might print.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from rich.logging import RichHandler

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# "Authorization: Bearer x", and the dict form {'Authorization': 'Bearer x'} some clients log.
_BEARER = re.compile(
    r"(?i)(authorization['\"]?:\s*['\"]?(?:bearer|basic)\s+|api[_-]?key['\"]?[=:]\s*['\"]?)"
    r"[^\s'\",}]+"
)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _BEARER.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler: logging.Handler
    if json_lines:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # python_http_client (under sendgrid) logs whole requests, recipients included, at DEBUG.
    for noisy in ("httpx", "alembic", "apscheduler", "python_http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
