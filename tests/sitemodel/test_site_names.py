"""Names in the site file become MQTT topic levels (``devices/{device}``, ``event/{device}``):
anything that would change what a subscriber matches (``/``, ``+``, ``#``), a control
character or a trailing newline is refused when the file is read, one line naming the field."""

from __future__ import annotations

import pytest

from edge_agent.errors import UsageError
from edge_agent.uplink.topics import Topics
from sitemodel import SiteError, parse_site
from tests.sitemodel.test_site import MINI, PROFILES

UNSAFE = ["nl/1", "nl+1", "nl#1", "+", "#", "nl\x07", "nl\x00", "nl-1\n", "nl-1\r\n", "nl 1", ""]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_device_name_is_refused_at_load(name):
    text = MINI.replace("{name: nl-1,", "{name: " + _quoted(name) + ",", 1)
    with pytest.raises(SiteError) as err:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    message = str(err.value)
    assert message.startswith("mini.yaml:9:") and "devices[0].name" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["mini/x", "mini+", "#", "mini\n", "mini\t"])
def test_unsafe_site_id_is_refused_at_load(name):
    text = MINI.replace("site: mini", "site: " + _quoted(name), 1)
    with pytest.raises(SiteError) as err:
        parse_site(text, source="mini.yaml", profiles=PROFILES)
    assert str(err.value).startswith("mini.yaml:1:") and "\n" not in str(err.value)


@pytest.mark.parametrize("name", UNSAFE)
def test_topics_refuse_unsafe_levels_as_a_second_line_of_defence(name):
    topics = Topics("lifeline/v1", "riverside", "gw-01")
    for make in (topics.device, topics.event, topics.telemetry):
        with pytest.raises(UsageError):
            make(name)
    with pytest.raises(UsageError):
        Topics("lifeline/v1", name, "gw-01")


def _quoted(name: str) -> str:
    """A YAML double-quoted scalar holding ``name`` exactly (control characters escaped)."""
    return (
        '"'
        + "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in name)
        + '"'
    )
