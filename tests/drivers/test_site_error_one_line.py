"""A site-file key holding a newline or other control characters still gives a one-line
SiteError (found by the mangled-file fuzz in test_site.py: the key went into the message
raw)."""

from __future__ import annotations

import pytest

from sitemodel import SiteError, parse_site
from tests.drivers.test_site import MINI, PROFILES


@pytest.mark.parametrize("key", ['"ki\\nnd"', '"ki\\tnd"', '"ki\\rnd"', '"k\\x1bind"'])
def test_control_characters_in_a_key_are_escaped(key):
    text = MINI.replace("kind: noise_logger", f"{key}: noise_logger", 1)
    with pytest.raises(SiteError) as err:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    message = str(err.value)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert message.startswith("mini.yaml:") and "unknown key" in message
