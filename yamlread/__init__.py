"""The one YAML reader: a YAML file into frozen dataclasses, every problem as one line
``file:line:col: path: problem``, all of a file's problems at once. It reads the gateway
config, device profiles, site files and the simulator's scenarios; it imports only the
standard library and PyYAML (nothing of ours), so every package may use it.

A format is a tree of frozen dataclasses whose fields carry ``meta(...)`` (``yamlread.fields``:
types, bounds, patterns, key aliases); rules across fields are a record's ``config_checks()``,
rules across records small check functions given to ``read_file``. Adding a section or a
field to a format is adding a dataclass field with its ``meta()``.

    site = read_file("site.yaml", SiteFile, what="site file", error=SiteError, checks=(...))
"""

from yamlread.convert import Checks, Converter, KeyPath
from yamlread.document import compose, decode, read_file, read_section, read_text
from yamlread.fields import INTERNAL, Section, config_fields, help_text, meta, yaml_key
from yamlread.partial import INVALID, is_bad, readable, whole
from yamlread.problems import Problem, ReadError

__all__ = [
    "INTERNAL",
    "INVALID",
    "Checks",
    "Converter",
    "KeyPath",
    "Problem",
    "ReadError",
    "Section",
    "compose",
    "config_fields",
    "decode",
    "help_text",
    "is_bad",
    "meta",
    "read_file",
    "read_section",
    "read_text",
    "readable",
    "whole",
    "yaml_key",
]
