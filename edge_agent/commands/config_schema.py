"""``edge-agent config-schema``: print the JSON Schema of the gateway config (for editors)."""

from __future__ import annotations

import argparse
import json
import sys

from edge_agent.config.schema import gateway_config_schema, schema_json
from edge_agent.errors import EXIT_OK

DESCRIPTION = """\
Print the JSON Schema (draft 2020-12) of the gateway config, generated from the same
dataclasses the loader uses. Point your editor at it for completion and checking.

examples:
  edge-agent config-schema > gateway-config.schema.json
  # VS Code (YAML extension): first line of gateway.yaml
  # yaml-language-server: $schema=./gateway-config.schema.json

The schema checks shapes, types, ranges and names; cross references (device -> bus, unique
unit ids, profiles, files) need `edge-agent check-config FILE`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true", help="one line instead of indented JSON")


def run(args: argparse.Namespace) -> int:
    if args.compact:
        json.dump(gateway_config_schema(), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        sys.stdout.write(schema_json())
    return EXIT_OK
