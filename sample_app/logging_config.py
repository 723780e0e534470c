"""Readable (or JSON) log lines for the app's own loggers, without touching anyone else's.

Every module of the app logs through ``logging.getLogger(__name__)``, i.e. under the
``sample_app`` logger. Nothing configures that logger by default: under ``reflex run`` the
root logger has no handler (Reflex and uvicorn configure only their own loggers), so the
app's INFO lines vanish and its warnings come out bare. :func:`configure_logging` gives the
``sample_app`` logger one handler of its own and a level; the root logger and the loggers
of Reflex, uvicorn, granian and httpx are left exactly as they are.

Settings, read when ``configure_logging`` is called without arguments:

* ``LOG_LEVEL``: ``DEBUG``, ``INFO`` (default), ``WARNING``, ``ERROR`` or ``CRITICAL``.
* ``LOG_FORMAT``: ``text`` (default),
  ``2026-01-31T09:15:02.123Z INFO sample_app.x [worker_id=w1 request_id=4f1c…]: message``,
  or ``json``, one object per line with ``time``, ``level``, ``logger``, ``message`` and
  ``worker_id`` (plus ``request_id`` inside a request, ``exception`` when a traceback is
  attached), for log collectors.
* ``SAMPLE_APP_WORKER_ID``: which backend worker wrote the line (the launcher sets ``w1``,
  ``w2``, …); ``pid-<process id>`` when unset, so lines of several workers behind one proxy
  can always be told apart.

The request id is :data:`request_id_var`, a context variable that
:mod:`sample_app.request_context` sets for each HTTP request, WebSocket connection and Reflex
event; it follows the request into tasks and ``asyncio.to_thread`` (both copy the context).

Records still propagate to the root logger, so whatever the process adds there (pytest's
log capture, an operator's handler) keeps seeing them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from typing import Final

__all__ = [
    "APP_LOGGER",
    "LEVELS",
    "WORKER_ID_VARIABLE",
    "JsonLinesFormatter",
    "LoggingConfigError",
    "TextFormatter",
    "configure_logging",
    "request_id_var",
    "worker_id",
]

#: The logger every app module logs under.
APP_LOGGER: Final = "sample_app"
#: Accepted ``LOG_LEVEL`` values (case does not matter).
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final = ("text", "json")

# The handler's name; configure_logging finds (and reuses) its handler by it, so calling
# it again, even after the module was reloaded, never stacks a second handler.
_HANDLER_NAME: Final = "sample_app.logging_config"
_TEXT_FORMAT: Final = (
    "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s [%(log_context)s]: %(message)s"
)
_DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"

#: The variable naming this backend worker in every log line (and in ``/readyz``).
WORKER_ID_VARIABLE: Final = "SAMPLE_APP_WORKER_ID"
_MAX_WORKER_ID_LENGTH: Final = 64
# Anything else in a worker id becomes "_": it goes into text lines unquoted.
_WORKER_ID_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")

#: The id of the request (HTTP request, WebSocket connection or Reflex event) being handled,
#: set by :mod:`sample_app.request_context`; ``None`` outside one.
request_id_var: ContextVar[str | None] = ContextVar("sample_app_request_id", default=None)


def worker_id() -> str:
    """This worker's name: ``SAMPLE_APP_WORKER_ID``, else ``pid-<process id>``.

    Read on every call, not once at import: a server that forks its workers after importing
    the app would otherwise give them all the parent's process id.
    """
    configured = os.environ.get(WORKER_ID_VARIABLE, "").strip()
    if configured:
        return _WORKER_ID_UNSAFE.sub("_", configured)[:_MAX_WORKER_ID_LENGTH]
    return f"pid-{os.getpid()}"


def _context_fields() -> dict[str, str]:
    """``worker_id`` always, ``request_id`` inside a request."""
    fields = {"worker_id": worker_id()}
    request_id = request_id_var.get()
    if request_id is not None:
        fields["request_id"] = request_id
    return fields


class LoggingConfigError(ValueError):
    """``LOG_LEVEL`` or ``LOG_FORMAT`` has a value this module does not know."""


class JsonLinesFormatter(logging.Formatter):
    """Format a record as one JSON object on one line.

    Keys: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
    ``worker_id``, ``request_id`` (inside a request), and ``exception`` (the formatted
    traceback) or ``stack`` when the record carries one. Newlines inside values are escaped
    by JSON, so each record stays one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line (without the trailing newline)."""
        payload: dict[str, str] = {
            "time": _utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_fields(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines: UTC time, level, logger, ``[worker_id=… request_id=…]``, message."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT, datefmt=_DATE_FORMAT)
        self.converter = time.gmtime

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Fill in the context fields of the moment, then the usual ``%`` format."""
        context = " ".join(f"{key}={value}" for key, value in _context_fields().items())
        # As Formatter.format itself sets record.message and record.asctime.
        record.__dict__["log_context"] = context
        return super().formatMessage(record)


class _StderrHandler(logging.Handler):
    """Write each record to the ``sys.stderr`` of the moment it is emitted.

    A ``StreamHandler`` keeps the stream it was created with; looking it up on every
    record follows test runners and servers that swap ``sys.stderr``.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record and a newline."""
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging(level: str | None = None, json_lines: bool | None = None) -> None:
    """Send the app's log records to stderr, readable or as JSON lines.

    Safe to call more than once: the second call updates the level and format of the
    handler the first one installed instead of adding another. Only the ``sample_app``
    logger is changed.

    Args:
        level: A level name (see :data:`LEVELS`); defaults to ``LOG_LEVEL``, else INFO.
        json_lines: JSON lines instead of text; defaults to ``LOG_FORMAT=json``.

    Raises:
        LoggingConfigError: The level, or ``LOG_FORMAT``, is not one this module knows.
            Nothing is changed in that case.
    """
    levelno = _parse_level(level if level is not None else os.environ.get("LOG_LEVEL"))
    if json_lines is None:
        json_lines = _parse_format(os.environ.get("LOG_FORMAT")) == "json"

    formatter: logging.Formatter = JsonLinesFormatter() if json_lines else TextFormatter()

    logger = logging.getLogger(APP_LOGGER)
    handler = next((h for h in logger.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        logger.addHandler(handler)
    handler.setFormatter(formatter)
    logger.setLevel(levelno)


def _parse_level(value: str | None) -> int:
    name = (value or "").strip().upper() or "INFO"
    if name not in LEVELS:
        raise LoggingConfigError(
            f"log level {value!r} (LOG_LEVEL) is unknown: use one of {', '.join(LEVELS)}"
        )
    level: int = getattr(logging, name)
    return level


def _parse_format(value: str | None) -> str:
    name = (value or "").strip().lower() or "text"
    if name not in FORMATS:
        raise LoggingConfigError(f"log format {value!r} (LOG_FORMAT) is unknown: use text or json")
    return name


def _utc_timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime(_DATE_FORMAT, time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"
