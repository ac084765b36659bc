"""Problem positions are counted as an editor counts them: lines end at LF only, although YAML
also breaks lines at a lone CR, NEL (U+0085), LS (U+2028) and PS (U+2029)."""

import pytest

from edge_agent.config import ConfigError, parse_config
from yamlread.problems import has_other_line_breaks, text_position


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\x85\x85: 1", (1, 3)),  # a YAML syntax error after two NELs
        ("a\u2028b: [", (1, 4)),
        ("version: 1\x85gateway: {name: x}\x85version: 2\n", (1, 31)),  # a duplicate key
        ("version: 1\r\nversion: 2\r\n", (2, 1)),  # CRLF is one line break for both
    ],
)
def test_positions_count_lf_only(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="g.yaml", base_dir=".")
    positions = [(p.line, p.col) for p in info.value.problems]
    assert expected in positions, positions
    assert all(line <= text.count("\n") + 1 for line, _ in positions), positions


def test_text_position_and_the_fast_path():
    assert text_position("ab\ncd", 4) == (2, 2)
    assert not has_other_line_breaks("a\r\nb\n")
    assert has_other_line_breaks("a\rb") and has_other_line_breaks("a\x85b")
