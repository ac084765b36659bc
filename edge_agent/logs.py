"""Logging for the daemon: structlog everywhere, JSON lines under systemd, a console on a TTY.

``configure_logging`` is called once by ``run``/``demo``. It routes the stdlib loggers that
pymodbus and paho write to through the same processors, so one format reaches the journal;
the bus, link, unit and device that ``drivers.transports`` puts on pymodbus's lines become
fields of the line like those of our own.

A gateway on an SD card must not write a line per failed poll of a flapping device: the
``RateLimitRepeats`` processor lets the first warning of a kind through, swallows repeats for
``window_s`` and then lets one line through carrying ``suppressed=N`` (how many it dropped).
``flush_summaries()`` emits those summaries for keys that went quiet, so the count is never lost.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = [
    "DEFAULT_RATE_LIMIT_WINDOW_S",
    "RateLimitRepeats",
    "configure_logging",
    "first_line_only",
    "flush_summaries",
    "get_logger",
    "use_json",
]

DEFAULT_RATE_LIMIT_WINDOW_S = 300.0
# Stdlib loggers of the libraries we drive: routed through structlog, their chatter capped.
FOREIGN_LOGGERS = ("pymodbus", "paho", "asyncio", "numba")
# What a library line may carry besides its text: drivers.transports names the bus, the link,
# the unit and the device on every pymodbus line.
LIBRARY_CONTEXT = ("bus", "device", "unit", "link")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR

_DIGITS = re.compile(r"\d+")

LogFormat = Literal["auto", "json", "console"]


class RateLimitRepeats:
    """Drop repeats of the same warning/error (same logger, event and device) within a window.

    The first occurrence passes; later ones within ``window_s`` are counted and dropped; the
    first one after the window passes with ``suppressed=N`` and opens a new window. Info and
    debug lines are never limited: they are state changes, already logged once per change.
    Nor is a line logged with ``rate_limit=False`` (the field is removed): the answer to
    something an operator did (a refused SIGHUP), which only they can repeat.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_RATE_LIMIT_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_level: int = logging.WARNING,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = float(window_s)
        self._clock = clock
        self._min_level = min_level
        # key -> [window start, suppressed count, last event dict seen]
        self._windows: dict[tuple[str, str, str], list[Any]] = {}
        self._lock = threading.Lock()  # paho and worker threads log too

    @staticmethod
    def _key(logger_name: str, event_dict: MutableMapping[str, Any]) -> tuple[str, str, str]:
        device = event_dict.get("device") or event_dict.get("bus") or ""
        return (logger_name, str(event_dict.get("event", "")), str(device))

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event_dict.pop("rate_limit", True) is False:
            return event_dict
        level = _LEVELS.get(method_name, logging.INFO)
        if method_name in ("exception", "critical"):
            level = logging.ERROR
        if level < self._min_level:
            return event_dict
        name = str(event_dict.get("logger") or getattr(logger, "name", "") or "")
        if self.admit(self._key(name, event_dict), method_name, event_dict):
            return event_dict
        raise structlog.DropEvent

    def admit(
        self, key: tuple[str, str, str], method_name: str, event_dict: MutableMapping[str, Any]
    ) -> bool:
        """True to let the line through (adding ``suppressed`` when a window closed with
        drops in it); False to drop it (counted for the summary)."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self.window_s:
                suppressed = window[1] if window is not None else 0
                self._windows[key] = [now, 0, None]
                if suppressed:
                    event_dict["suppressed"] = suppressed
                    event_dict["window_s"] = self.window_s
                return True
            window[1] += 1
            window[2] = (method_name, dict(event_dict))
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        """As a ``logging.Filter`` for library (stdlib) records, keyed on the first line of
        the message: structlog's DropEvent cannot be raised from a formatter."""
        if isinstance(record.msg, dict) or record.levelno < self._min_level:
            return True  # structlog's own lines were limited in its chain already
        first = record.getMessage().split("\n", 1)[0].rstrip()
        fields: dict[str, Any] = {"event": first, "logger": record.name}
        method = logging.getLevelName(record.levelno).lower()
        # Library messages embed counters (transaction ids, retries): one key for all of them,
        # per device (or bus) where the line names one (drivers.transports adds them).
        where = getattr(record, "device", None) or getattr(record, "bus", None) or ""
        key = (record.name, _DIGITS.sub("#", first), str(where))
        fields.update({k: getattr(record, k) for k in LIBRARY_CONTEXT if hasattr(record, k)})
        if not self.admit(key, method, fields):
            return False
        for extra in ("suppressed", "window_s"):
            if extra in fields:
                setattr(record, extra, fields[extra])
        return True

    def due_summaries(self) -> list[tuple[str, dict[str, Any]]]:
        """Take the (method, event dict) summaries of windows that closed with drops in them.

        The returned dicts carry ``suppressed`` and ``window_s``; the window is forgotten, so
        the next occurrence of that key passes through as a fresh first one.
        """
        now = self._clock()
        out: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for key, (started, suppressed, last) in list(self._windows.items()):
                if now - started < self.window_s:
                    continue
                del self._windows[key]
                if suppressed and last is not None:
                    method, event_dict = last
                    event_dict = dict(event_dict)
                    event_dict["suppressed"] = suppressed
                    event_dict["window_s"] = self.window_s
                    event_dict["summary"] = True
                    out.append((method, event_dict))
        return out


_rate_limiter: RateLimitRepeats | None = None


def first_line_only(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Library messages keep their first line: pymodbus appends a dump of the last 20 frames
    to every error, which would make each line unique (defeating the rate limit) and long."""
    event = event_dict.get("event")
    if isinstance(event, str) and "\n" in event:
        event_dict["event"] = event.split("\n", 1)[0].rstrip()
    return event_dict


def use_json(fmt: LogFormat, stream: TextIO) -> bool:
    """JSON lines unless asked for a console, or ``auto`` on a TTY outside systemd.

    journald sets ``JOURNAL_STREAM`` for a unit's stdout: JSON there even if it were a TTY.
    """
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        return True
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "auto",
    *,
    stream: TextIO | None = None,
    rate_limit_window_s: float = DEFAULT_RATE_LIMIT_WINDOW_S,
    clock: Callable[[], float] = time.monotonic,
) -> RateLimitRepeats:
    """Configure structlog and the stdlib root logger once; return the rate limiter in use.

    Raises ValueError for an unknown level (config validation catches that earlier).
    """
    global _rate_limiter
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {sorted(_LEVELS)}")
    out = stream if stream is not None else sys.stdout
    as_json = use_json(fmt, out)
    limiter = RateLimitRepeats(rate_limit_window_s, clock=clock)
    _rate_limiter = limiter

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        limiter,
    ]
    renderer: Any
    if as_json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_colors_ok(out))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    foreign = [
        first_line_only,
        structlog.stdlib.ExtraAdder(allow=(*LIBRARY_CONTEXT, "suppressed", "window_s")),
        *(p for p in shared if p is not limiter),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(limiter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # Library loggers: their debug chatter is never useful in the field; warnings go through
    # the same rate limiter as ours.
    for name in FOREIGN_LOGGERS:
        logging.getLogger(name).setLevel(max(_LEVELS[level], logging.INFO))
    logging.getLogger("numba").setLevel(logging.WARNING)
    return limiter


def flush_summaries() -> int:
    """Log the summaries of rate-limit windows that closed; returns how many were logged.

    A summary passes the limiter as the first line of a fresh window for its key, so a device
    that keeps flapping gives one line per window, never one per failure.
    """
    limiter = _rate_limiter
    if limiter is None:
        return 0
    due = limiter.due_summaries()
    for method, event_dict in due:
        name = str(event_dict.pop("logger", "edge_agent"))
        event = str(event_dict.pop("event", "repeated"))
        for meta in ("level", "timestamp"):
            event_dict.pop(meta, None)
        level = _LEVELS.get(method, logging.WARNING)
        structlog.get_logger(name).log(level, event, **event_dict)
    return len(due)


def get_logger(name: str, **context: Any) -> Any:
    """A structlog logger with ``context`` bound (e.g. ``device=``, ``bus=``).

    Lazy: safe at module level before ``configure_logging`` runs (binding eagerly would
    freeze structlog's default console config into the logger).
    """
    return structlog.get_logger(name, **context)


def _colors_ok(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
