"""Logging to standard error, plain or one JSON object per line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from maildesk.config import LogSettings

#: Extra attributes a log call may carry (logger.info(..., extra={...})).
CONTEXT_KEYS = ("ticket", "message_id", "inbound_id", "source")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if hasattr(record, k)]
        return f"{text} [{' '.join(extras)}]" if extras else text


def setup_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.format == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Alembic narrates every migration step at INFO; `db upgrade` says what
    # it did in one line of its own.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # mail-parser logs whole header values at ERROR for every odd header;
    # mail/parse.py records each such repair as a problem note on the ticket.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    # aiosmtpd logs every SMTP command at INFO ("mail.log"); our own lines
    # say what matters (accepted, refused, 451).
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, root.level))
    # aioimaplib logs whole mails at DEBUG (and a password containing '"'
    # or '\\'), and every ignored server response at INFO.
    logging.getLogger("aioimaplib").setLevel(max(logging.WARNING, root.level))
    # One access line per health check or scrape would drown the mail lines.
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root.level))
