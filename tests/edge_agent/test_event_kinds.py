"""The event-kind contract cannot drift: every kind the code can emit is in
``edge_agent.events.DEFAULT_SEVERITY`` and in the kinds table of docs/mqtt.md, with the same
severity, and the table lists nothing the code does not know.

Kinds are found by reading the source of every module that makes events: any dotted lowercase
string literal there (``"level.rising.cleared"``) that is not a module or file name is a kind.
Building a kind with an f-string would hide it from this check, so that fails too.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from edge_agent.events import DEFAULT_SEVERITY, TELEMETRY_KIND, Severity
from edge_agent.rules.point_rules import KINDS

ROOT = Path(__file__).resolve().parents[2]
EMITTERS = [
    *sorted((ROOT / "edge_agent" / "rules").glob("*.py")),
    *sorted((ROOT / "edge_agent" / "daemon").glob("*.py")),
    *sorted((ROOT / "edge_agent" / "outbox").glob("*.py")),
    ROOT / "dsp" / "tracker.py",
]
DOTTED = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
FILE_SUFFIX = r"\.(json|yaml|sqlite3|wav|md|py|tmp|lock)$"
NOT_KINDS = re.compile(rf"^(edge_agent|drivers|dsp)\.|{FILE_SUFFIX}")
TABLE_ROW = re.compile(r"^\| (`[a-z0-9_.]+`(?:, `[a-z0-9_.]+`)*) \| ([0-4](?:, [0-4])*) \|")


def literal_kinds(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and DOTTED.match(node.value)
        and not NOT_KINDS.search(node.value)
    }


def built_kinds(path: Path) -> list[str]:
    """f-strings whose literal part looks like a kind suffix (``f"{kind}.cleared"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.name}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        and any(
            isinstance(part, ast.Constant)
            and re.fullmatch(r"\.[a-z_]+", str(part.value))
            and not re.match(FILE_SUFFIX, str(part.value))
            for part in node.values
        )
    ]


def documented_kinds() -> dict[str, int]:
    """The rows of the "### Event kinds" table of docs/mqtt.md: kind -> sev."""
    text = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    section = text.split("### Event kinds", 1)[1].split("\n#", 1)[0]
    table: dict[str, int] = {}
    for line in section.splitlines():
        match = TABLE_ROW.match(line)
        if match is None:
            continue
        kinds = [k.strip("` ") for k in match.group(1).split(",")]
        sevs = [int(s) for s in match.group(2).split(",")]
        assert len(kinds) == len(sevs), line
        table.update(zip(kinds, sevs, strict=True))
    return table


def emitted_kinds() -> set[str]:
    kinds = set().union(*(literal_kinds(p) for p in EMITTERS))
    kinds.update(k for family in KINDS.values() for k in family.values())
    return kinds


def test_the_scan_finds_kinds_of_every_emitter() -> None:
    # Guards the scan itself: one kind from each kind of source must be found.
    kinds = emitted_kinds()
    for kind in [
        "level.rising.cleared",
        "threshold.low",
        "sewer.blockage_suspected.cleared",
        "device.fault.cleared",
        "leak.warning",
        "leak.located",
        "gateway.started",
        "gateway.outbox_dropped",
    ]:
        assert kind in kinds


@pytest.mark.parametrize("path", EMITTERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_kind_is_built_at_run_time(path: Path) -> None:
    assert built_kinds(path) == []


def test_every_emitted_kind_has_a_severity() -> None:
    assert sorted(emitted_kinds() - set(DEFAULT_SEVERITY)) == []


def test_docs_table_matches_the_severities() -> None:
    table = documented_kinds()
    assert table == {kind: int(sev) for kind, sev in DEFAULT_SEVERITY.items()}
    assert TELEMETRY_KIND not in table


def test_cleared_and_normal_kinds_are_not_alarms() -> None:
    for kind, sev in DEFAULT_SEVERITY.items():
        if kind.endswith((".cleared", ".normal", ".online", ".closed")):
            assert sev is Severity.INFO, kind


def test_every_kind_passes_the_payload_schema() -> None:
    schema = json.loads((ROOT / "edge_agent" / "schemas" / "event.schema.json").read_text())
    kind_pattern = re.compile(schema["properties"]["kind"]["pattern"])
    assert [k for k in DEFAULT_SEVERITY if not kind_pattern.fullmatch(k)] == []


def test_the_schema_lists_every_known_kind() -> None:
    schema = json.loads((ROOT / "edge_agent" / "schemas" / "event.schema.json").read_text())
    assert schema["$defs"]["known_kinds"]["enum"] == sorted(DEFAULT_SEVERITY)
