"""benchmarks/bus_time.py reads the paced line's log right: on a wire log written out by hand
(a recording transfer at 38400 baud with known silences, an alarm poll nobody answered), its
utilisation counts the characters and, of each silence before a frame, at most the RTU
framing's 3.5 characters; a turnaround beyond that, and a timeout, are idle (not a
measurement: docs/benchmarks.md has the figures)."""

from __future__ import annotations

import json

import pytest

from benchmarks.bus_time import analyse

BAUD = 38400
CHAR_S = 11 / BAUD
GAP_S = 0.00175  # the spec's silence above 19200 baud
GATEWAY_SILENCE_S = 0.0025  # before each request: the gap and 0.75 ms more (idle)
DEVICE_SILENCE_S = 0.001  # before each answer: shorter than the gap, all of it counts
TIMEOUT_S = 0.5
BUSES = {"water": {1: ("nl-01", "noise_logger"), 11: ("gd-01", "gas")}}


def _frame(side: str, start: float, nbytes: int, head: bytes) -> tuple[dict, float]:
    end = start + nbytes * CHAR_S
    frame = {"line": 0, "side": side, "start": start, "end": end, "nbytes": nbytes}
    return {**frame, "head": head.hex()}, end


def _wire_log(tmp_path, blocks: int) -> tuple[object, float]:
    """A transfer of ``blocks`` blocks (index write + 120-register read), with one
    unanswered alarm poll after the first block; the log and the transfer's span."""
    frames: list[dict] = []
    t = 100.0
    start = t
    for index in range(blocks):
        for request, nbytes_answer in (
            (bytes([1, 6, 0, 110, 0, index % 256]), 8),
            (bytes([1, 3, 0, 200, 0, 120]), 245),
        ):
            frame, t = _frame("master", t, 8, request)
            frames.append(frame)
            frame, t = _frame("device", t + DEVICE_SILENCE_S, nbytes_answer, request[:2])
            frames.append(frame)
            t += GATEWAY_SILENCE_S
        if index == 0:  # the gas detector does not answer: the gateway waits its timeout
            frame, t = _frame("master", t, 8, bytes([11, 4, 0, 0, 0, 12]))
            frames.append(frame)
            t += TIMEOUT_S
    span = frames[-1]["end"] - start
    log = tmp_path / "wire.jsonl"
    summary = {"line": 0, "link": "gw-water", "collisions": 0, "max_lag_s": 0.0}
    log.write_text("\n".join(json.dumps(f) for f in [summary, *frames]) + "\n")
    return log, span


def test_utilisation_counts_the_framing_silence_and_not_the_idle_beyond_it(tmp_path):
    blocks = 50
    log, span = _wire_log(tmp_path, blocks)
    figures = analyse(log, BUSES, BAUD, spawned=99.0)

    chars_s = (blocks * 269 + 8) * CHAR_S
    requests = 2 * blocks + 1
    # Before each request but the first: the gap (a longer silence is idle beyond it);
    # before each answer: the device's silence, shorter than the gap, all of it.
    silences_s = (requests - 1) * GAP_S + 2 * blocks * DEVICE_SILENCE_S
    assert figures["bus_utilisation_chars_only"] == pytest.approx(chars_s / span, abs=1e-3)
    assert figures["bus_utilisation"] == pytest.approx((chars_s + silences_s) / span, abs=1e-3)
    assert figures["transfer_framing_silence_s"] == pytest.approx(silences_s, abs=0.06)
    assert figures["idle_waiting_on_timeouts_s"] == pytest.approx(TIMEOUT_S, abs=0.06)
    # The timeout keeps the utilisation below the floor here: it is idle, not wire time.
    assert figures["bus_utilisation"] < 0.9
    # The transfer's own requests, each to the next (the alarm poll and its wait not counted),
    # over the bytes they moved.
    assert figures["transfer_s"] == pytest.approx(span - 8 * CHAR_S - TIMEOUT_S, abs=0.05)
    assert figures["transfer_wire_limit_s"] == pytest.approx(blocks * 269 * CHAR_S, abs=0.05)
    assert figures["gap_ms"] == 1.75
