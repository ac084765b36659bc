"""The recording schedule's file in the state directory: round trip, atomic replace, and
files that cannot be trusted start a fresh schedule with one warning."""

from __future__ import annotations

import json

import pytest

from edge_agent.daemon.schedule import ScheduleState
from edge_agent.daemon.schedule_state import (
    SCHEDULE_FILE,
    load_schedule_state,
    save_schedule_state,
)


def test_round_trip(tmp_path):
    state = ScheduleState("2026-01-05", {"nl-01": 1, "nl-02": 0}, 1767578400.0)
    save_schedule_state(tmp_path, state)
    assert load_schedule_state(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == [SCHEDULE_FILE]  # no temp file left


def test_missing_file_or_no_state_dir_is_a_fresh_schedule(tmp_path):
    assert load_schedule_state(tmp_path) == ScheduleState()
    assert load_schedule_state(None) == ScheduleState()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "Expecting"),
        ('{"version": 2}', "not a version 1"),
        ('{"version": 1, "night": 5}', "night"),
        ('{"version": 1, "done": {"nl-01": -1}}', "done"),
        ('{"version": 1, "done": [1]}', "done"),
        ('{"version": 1, "last_day_at": "noon"}', "last_day_at"),
    ],
)
def test_a_file_that_makes_no_sense_starts_fresh_and_says_why(tmp_path, text, why, capsys):
    (tmp_path / SCHEDULE_FILE).write_text(text)
    assert load_schedule_state(tmp_path) == ScheduleState()
    logged = capsys.readouterr()
    line = logged.out + logged.err
    assert "recording schedule not restored" in line and why in line
    assert SCHEDULE_FILE in line


def test_an_unwritable_state_dir_is_logged_not_raised(tmp_path, capsys):
    missing = tmp_path / "gone"
    save_schedule_state(missing, ScheduleState())
    logged = capsys.readouterr()
    assert "cannot save the recording schedule" in logged.out + logged.err


def test_file_is_plain_json(tmp_path):
    save_schedule_state(tmp_path, ScheduleState(None, {}, None))
    assert json.loads((tmp_path / SCHEDULE_FILE).read_text())["version"] == 1
