"""A site-file key holding a newline or other control characters still gives one line per
problem (found by the mangled-file fuzz in test_site.py: the key went into the message raw)."""

from __future__ import annotations

import pytest

from sitemodel import SiteError, parse_site
from tests.sitemodel.test_site import MINI, PROFILES


@pytest.mark.parametrize("key", ['"ki\\nnd"', '"ki\\tnd"', '"ki\\rnd"', '"k\\x1bind"'])
def test_control_characters_in_a_key_are_escaped(key):
    text = MINI.replace("kind: noise_logger", f"{key}: noise_logger", 1)
    with pytest.raises(SiteError) as err:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    lines = str(err.value).split("\n")  # one per problem: the unknown key, the missing kind
    assert len(lines) == len(err.value.problems) == 2
    assert all(line.isprintable() and line.startswith("mini.yaml:") for line in lines)
    assert "unknown key (did you mean 'kind'?)" in lines[1]
