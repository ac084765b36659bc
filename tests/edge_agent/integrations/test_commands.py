"""Safe commands: the three verbs carried out, everything else refused and answered on the
command's own result topic, and the hand-applied rules held to the shipped request schema."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent import payload
from edge_agent.integrations.commands import (
    MAX_PAYLOAD,
    CommandRefused,
    Commands,
    parse,
)
from tests.edge_agent.integrations.fixtures import BASE, TOPICS

NOW = 1_800_000_000.0


class Target:
    """A gateway with two loggers and a level gauge; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def record(self, device):
        self.calls.append(("record", device))
        if device is None:
            return ["nl-01", "nl-02"]
        if device == "lv-01":
            raise CommandRefused("not_a_logger", "lv-01 is not a noise logger")
        if device not in ("nl-01", "nl-02"):
            raise CommandRefused("unknown_device", f"no device {device!r}")
        return [device]

    def rebirth(self):
        self.calls.append(("rebirth", None))

    def ping(self):
        return {"agent": "edge-agent test", "uptime_s": 1.0, "devices": 3, "online": 3}


def send(cmd: Commands, verb: str, body) -> tuple[str, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = cmd.on_message(f"{BASE}/cmd/{verb}", raw)
    result = json.loads(answer.payload)
    payload.validate(result, "command-result")
    assert not answer.retain and answer.qos == 1
    return answer.topic, result


def commands(target=None, max_age_s=300.0) -> Commands:
    return Commands(TOPICS, target or Target(), lambda: NOW, max_age_s)


def ms(offset_s: float = 0.0) -> int:
    return round((NOW + offset_s) * 1000)


def test_record_one_logger_or_all():
    target = Target()
    cmd = commands(target)
    topic, r = send(cmd, "record", {"id": "a1", "ts": ms(), "device": "nl-02"})
    assert topic == f"{BASE}/cmd-result/a1"
    assert (r["ok"], r["cmd"], r["result"]) == (True, "record", {"devices": ["nl-02"]})
    _, r = send(cmd, "record", {"id": "a2", "ts": ms()})
    assert r["result"] == {"devices": ["nl-01", "nl-02"]}
    assert target.calls == [("record", "nl-02"), ("record", None)]


def test_rebirth_and_ping():
    target = Target()
    cmd = commands(target)
    assert send(cmd, "rebirth", {"id": "b1", "ts": ms()})[1]["ok"]
    assert target.calls == [("rebirth", None)]
    _, r = send(cmd, "ping", {"v": 1, "id": "b2", "ts": ms()})
    assert r["result"]["online"] == 3


@pytest.mark.parametrize(
    ("verb", "body", "error", "answered_on"),
    [
        ("restart", {"id": "c1", "ts": ms()}, "unknown_command", "c1"),
        ("shell", {"id": "c2", "ts": ms(), "cmd": "rm -rf /"}, "malformed", "c2"),
        ("ping", b"\xff\x00not json", "malformed", "_malformed"),
        ("ping", b"[1, 2]", "malformed", "_malformed"),
        ("ping", {"ts": ms()}, "malformed", "_malformed"),
        ("ping", {"id": "../x", "ts": ms()}, "malformed", "_malformed"),
        ("ping", {"id": "c3"}, "malformed", "c3"),
        ("ping", {"id": "c4", "ts": "now"}, "malformed", "c4"),
        ("ping", {"id": "c5", "ts": True}, "malformed", "c5"),
        ("ping", {"id": "c6", "ts": ms(), "device": "nl-01"}, "malformed", "c6"),
        ("ping", {"id": "c7", "ts": ms(-301)}, "expired", "c7"),
        ("ping", {"id": "c8", "ts": ms(+301)}, "expired", "c8"),
        ("record", {"id": "c9", "ts": ms(), "device": "lv-01"}, "not_a_logger", "c9"),
        ("record", {"id": "c10", "ts": ms(), "device": "xx-99"}, "unknown_device", "c10"),
        ("record", {"id": "c11", "ts": ms(), "device": "a/b"}, "malformed", "c11"),
        ("record", {"id": "c13", "ts": ms(), "device": None}, "malformed", "c13"),
        ("ping", b"{" + b" " * MAX_PAYLOAD + b"}", "malformed", "_malformed"),
        ("a/b", {"id": "c12", "ts": ms()}, "unknown_command", "c12"),
    ],
)
def test_refused_and_answered(verb, body, error, answered_on):
    target = Target()
    topic, r = send(commands(target), verb, body)
    assert (r["ok"], r["error"], r["id"]) == (False, error, answered_on)
    assert topic == f"{BASE}/cmd-result/{answered_on}"
    assert r["message"] and "\n" not in r["message"]
    assert [c for c in target.calls if c[0] != "record"] == []


def test_duplicate_id_is_refused_and_the_first_stands():
    target = Target()
    cmd = commands(target)
    assert send(cmd, "rebirth", {"id": "d1", "ts": ms()})[1]["ok"]
    _, r = send(cmd, "rebirth", {"id": "d1", "ts": ms()})
    assert (r["ok"], r["error"]) == (False, "duplicate_id")
    assert target.calls == [("rebirth", None)]


def test_ids_are_forgotten_only_once_they_could_no_longer_pass_the_age_check():
    clock = [NOW]
    cmd = Commands(TOPICS, Target(), lambda: clock[0], 10.0)
    assert send(cmd, "ping", {"id": "e1", "ts": ms()})[1]["ok"]
    clock[0] = NOW + 15  # 15 s later the same id (a replay of that message) is still refused
    assert send(cmd, "ping", {"id": "e1", "ts": ms(15)})[1]["error"] == "duplicate_id"
    clock[0] = NOW + 25  # beyond 2 x max age the id is forgotten; an old replay is expired
    assert send(cmd, "ping", {"id": "e1", "ts": ms()})[1]["error"] == "expired"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,70}", fullmatch=True), JSONISH),
        "ts": st.one_of(st.integers(-5, 2**45), st.floats(allow_nan=False), JSONISH),
        "device": st.one_of(st.from_regex(r"[A-Za-z0-9_./+-]{0,9}", fullmatch=True), JSONISH),
        "v": st.one_of(st.just(1), JSONISH),
        "extra": JSONISH,
    },
)


@settings(max_examples=1500)
@given(REQUESTS)
def test_parse_and_the_shipped_schema_agree(body):
    """Whatever the payload, the gateway refuses it as malformed exactly when the request
    schema does (the daemon does not import jsonschema)."""
    try:
        payload.validate(body, "command")
        schema_ok = True
    except payload.PayloadError:
        schema_ok = False
    try:
        parse("ping", json.dumps(body).encode())
        parse_ok = True
    except CommandRefused as refused:
        assert refused.code == "malformed"
        parse_ok = False
    assert parse_ok == schema_ok, body
