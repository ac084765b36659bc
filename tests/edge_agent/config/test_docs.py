"""docs/config.md stays true: its generated reference matches the dataclasses, and every
complete example in it is a valid config."""

import re
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.config.reference import DOC_PATH, current_block, reference_markdown
from tests.edge_agent.config.conftest import FIXTURES, real_profiles

REGENERATE = ".venv/bin/python -m edge_agent.config.schema --write"
DOC = DOC_PATH.read_text() if DOC_PATH.exists() else ""
EXAMPLES = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if b.startswith("version:")]


def test_reference_is_up_to_date():
    assert current_block(DOC) == reference_markdown(), (
        f"{DOC_PATH} reference is stale: regenerate it with {REGENERATE}"
    )


@pytest.mark.parametrize("text", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_examples_are_valid(text):
    cfg = parse_config(text, file="docs/config.md", base_dir=str(FIXTURES), profiles=real_profiles)
    assert cfg.buses


def test_there_are_examples():
    assert len(EXAMPLES) >= 2


def test_the_full_example_matches_the_fixture():
    # The doc's complete example and the fixture carry the same settings.
    full = max(EXAMPLES, key=len)
    doc_cfg = parse_config(full, file="doc", base_dir=str(FIXTURES))
    fixture = Path(FIXTURES / "gateway-full.yaml").read_text()
    fix_cfg = parse_config(fixture, file="fixture", base_dir=str(FIXTURES))
    assert doc_cfg == fix_cfg


def test_documented_problem_lines_have_the_real_form():
    lines = re.findall(r"^gateway\.yaml:.*$", DOC, re.M)
    assert lines
    assert all(re.match(r"^[^:]+:\d+:\d+: [\w\[\].]+: \S", line) for line in lines)
