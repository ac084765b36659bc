"""structlog setup: JSON lines vs console, stdlib routing, and the rate limiter for flapping."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from edge_agent.logs import RateLimitRepeats, configure_logging, flush_summaries, use_json


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("fmt", "tty", "env", "expected"),
    [
        ("json", True, {}, True),
        ("console", False, {}, False),
        ("auto", True, {}, False),
        ("auto", False, {}, True),
        ("auto", True, {"JOURNAL_STREAM": "8:1234"}, True),
    ],
)
def test_use_json(monkeypatch, fmt, tty, env, expected):
    """auto: console on a TTY, JSON otherwise and always under systemd."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stream = TtyStream() if tty else io.StringIO()
    assert use_json(fmt, stream) is expected


class TestConfigureLogging:
    def test_json_lines_with_bound_device_context(self):
        """Each line is one JSON object with level, logger, timestamp and the bound context."""
        out = io.StringIO()
        configure_logging("info", "json", stream=out)
        structlog.get_logger("edge_agent.bus").bind(device="lv-01", bus="water").info(
            "device online", polls=3
        )
        (line,) = _lines(out)
        assert line["event"] == "device online"
        assert line["device"] == "lv-01" and line["bus"] == "water" and line["polls"] == 3
        assert line["level"] == "info" and line["logger"] == "edge_agent.bus"
        assert "timestamp" in line

    def test_pymodbus_and_paho_stdlib_logs_go_through_structlog(self):
        """Library loggers come out as JSON lines too; their debug chatter is cut."""
        out = io.StringIO()
        configure_logging("debug", "json", stream=out)
        logging.getLogger("pymodbus.logging").warning("Unable to decode frame 0x1 0x2")
        logging.getLogger("paho.mqtt.client").debug("Sending PINGREQ")
        lines = _lines(out)
        assert [(x["logger"], x["event"]) for x in lines] == [
            ("pymodbus.logging", "Unable to decode frame 0x1 0x2")
        ]

    def test_console_renderer_on_a_tty(self, monkeypatch):
        """A person at a terminal gets a readable line, not JSON."""
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        monkeypatch.delenv("INVOCATION_ID", raising=False)
        monkeypatch.setenv("NO_COLOR", "1")
        out = TtyStream()
        configure_logging("info", "auto", stream=out)
        structlog.get_logger("x").info("hello", device="nl-01")
        text = out.getvalue()
        assert "hello" in text and "device=nl-01" in text and not text.startswith("{")

    def test_flapping_device_gives_a_summary_not_a_line_per_failure(self):
        """500 failures in one window: one line, then one summary carrying the count."""
        out = io.StringIO()
        clock = FakeClock()
        configure_logging("info", "json", stream=out, rate_limit_window_s=60, clock=clock)
        log = structlog.get_logger("drivers.bus").bind(device="lv-02")
        for _ in range(500):
            log.warning("poll failed", error="timeout")
            clock.t += 0.1
        assert len(_lines(out)) == 1
        clock.t += 60
        assert flush_summaries() == 1
        lines = _lines(out)
        assert len(lines) == 2
        assert lines[1]["suppressed"] == 499 and lines[1]["device"] == "lv-02"
        assert lines[1]["summary"] is True

    def test_unknown_level_is_refused(self):
        with pytest.raises(ValueError, match="unknown log level"):
            configure_logging("loud", "json", stream=io.StringIO())


class TestRateLimitRepeats:
    def _call(self, limiter, level, **event):
        return limiter(None, level, {"logger": "t", **event})

    def test_first_passes_repeats_drop_next_window_carries_count(self):
        """Within the window repeats are dropped; the next one after it says how many."""
        clock = FakeClock()
        limiter = RateLimitRepeats(10, clock=clock)
        assert "suppressed" not in self._call(limiter, "warning", event="e", device="a")
        for _ in range(3):
            with pytest.raises(structlog.DropEvent):
                self._call(limiter, "warning", event="e", device="a")
        clock.t = 11
        assert self._call(limiter, "warning", event="e", device="a")["suppressed"] == 3

    def test_keys_are_per_device_and_event(self):
        """Another device or another message is not a repeat."""
        limiter = RateLimitRepeats(10, clock=FakeClock())
        self._call(limiter, "error", event="e", device="a")
        self._call(limiter, "error", event="e", device="b")
        self._call(limiter, "error", event="f", device="a")

    def test_info_is_never_limited(self):
        """State changes (info) are logged once per change by their owners already."""
        limiter = RateLimitRepeats(10, clock=FakeClock())
        for _ in range(5):
            self._call(limiter, "info", event="e", device="a")

    def test_an_answer_to_an_operator_is_never_limited(self):
        """``rate_limit=False`` (a refused SIGHUP) passes every time, the field removed."""
        limiter = RateLimitRepeats(10, clock=FakeClock())
        for _ in range(3):
            line = self._call(limiter, "error", event="refused", rate_limit=False)
            assert "rate_limit" not in line
        self._call(limiter, "error", event="refused")
        with pytest.raises(structlog.DropEvent):
            self._call(limiter, "error", event="refused")

    def test_due_summaries_only_for_closed_windows_with_drops(self):
        clock = FakeClock()
        limiter = RateLimitRepeats(10, clock=clock)
        self._call(limiter, "warning", event="once", device="a")
        self._call(limiter, "warning", event="many", device="a")
        with pytest.raises(structlog.DropEvent):
            self._call(limiter, "warning", event="many", device="a")
        assert limiter.due_summaries() == []
        clock.t = 10
        ((method, summary),) = limiter.due_summaries()
        assert method == "warning" and summary["event"] == "many" and summary["suppressed"] == 1
        assert limiter.due_summaries() == []

    def test_window_must_be_positive(self):
        with pytest.raises(ValueError):
            RateLimitRepeats(0)


def test_pymodbus_frame_dumps_are_cut_and_rate_limited():
    """pymodbus appends the last frames to each error: one line, then rate-limited."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    for i in range(20):
        logging.getLogger("pymodbus.logging").error(
            f"Cancel send, because not connected!\n>>>>> send: 0x0 0x{i:x}\n>>>>> recv: 0x1"
        )
    (line,) = _lines(out)
    assert line["event"] == "Cancel send, because not connected!"


def test_library_lines_are_limited_per_device_and_summaries_name_it():
    """A pymodbus line naming a device (drivers.transports adds it) is limited per device;
    the summary of the dropped repeats keeps the device."""
    out = io.StringIO()
    clock = FakeClock()
    configure_logging("info", "json", stream=out, rate_limit_window_s=60, clock=clock)
    logger = logging.getLogger("edge_agent.test_library")
    for _ in range(5):
        for device in ("lv-01", "lv-02"):
            logger.warning("late answer from unit 7 ignored", extra={"device": device, "bus": "b"})
    lines = _lines(out)
    assert [(x["device"], x["bus"]) for x in lines] == [("lv-01", "b"), ("lv-02", "b")]
    clock.t += 60
    assert flush_summaries() == 2
    summaries = _lines(out)[2:]
    assert sorted((x["device"], x["suppressed"]) for x in summaries) == [("lv-01", 4), ("lv-02", 4)]
