"""YAML -> frozen config dataclasses, with every problem reported as ``file:line:col: path: what``.

The YAML is composed (not constructed) so every value keeps its position; ``yamlread``'s
``Converter`` turns the nodes into the dataclasses of ``model`` collecting all problems in one
pass, ``crosscheck`` then checks the file as a whole. ``load_config``
either returns a ``GatewayConfig`` or raises ``ConfigError`` holding every ``Problem``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Literal

import yaml

from edge_agent.config.crosscheck import ProfileSource, cross_checks, registry_profiles
from edge_agent.config.model import CONFIG_VERSION, GatewayConfig
from edge_agent.config.secrets import Secret, SecretError, resolve_secret
from edge_agent.errors import UsageError
from yamlread import Converter, Problem, ReadError, compose, config_fields, decode
from yamlread.convert import MAX_NODE_VISITS, TooBig

__all__ = [
    "ConfigError",
    "Problem",
    "ProfileSource",
    "config_fields",
    "load_config",
    "parse_config",
    "registry_profiles",
    "resolve_uplink_password",
]

# A gateway config is a few kB; anything this large is the wrong file (or /dev/zero).
MAX_CONFIG_BYTES = 4 * 2**20


class ConfigError(ReadError, UsageError):
    """The config file is unusable (exit 2); ``problems`` lists every problem, ``str()`` gives
    one line per problem."""


def parse_config(
    text: str,
    *,
    file: str = "<config>",
    base_dir: str | None = None,
    profile_exists: Callable[[str], bool] | None = None,
    profile_names: Collection[str] | None = None,
    profiles: ProfileSource | None = None,
) -> GatewayConfig:
    """Parse config text. ``file`` names it in problems; relative paths resolve against
    ``base_dir`` (default: the current directory).

    Device profiles are checked by whichever is given: ``profiles`` (called with the resolved
    ``profiles_dir`` or ``None``; returns the known profiles by name, as
    ``registry_profiles`` does for the daemon and the commands; profile objects with ``points``
    and ``with_overrides()`` also get each device's point overrides checked; a
    ``ProfileError``/``UsageError`` it raises becomes a problem at ``profiles_dir``),
    ``profile_names`` (also feeds did-you-mean) or ``profile_exists``. None of them skips
    the check.

    Raises ``ConfigError`` listing every problem.
    """
    base = os.path.abspath(base_dir or os.getcwd())
    conv = Converter(file, base, max_visits=max(MAX_NODE_VISITS, len(text)), text=text)

    def fail(line: int, col: int, message: str) -> ConfigError:
        return ConfigError([Problem(file, line, col, "", message)])

    root = compose(text, file, error=ConfigError)
    if root is None:
        raise fail(1, 1, "the file is empty (expected a mapping with version, gateway, buses)")
    if not isinstance(root, yaml.MappingNode):
        line, col = conv.pos(root)
        raise fail(line, col, f"expected a mapping at the top level, got {conv.describe(root)}")

    try:
        entries = conv.entries(root, "")
        if "version" not in entries:
            conv.problem(
                root, "", f"missing required key 'version' (this edge-agent reads {CONFIG_VERSION})"
            )
            raise ConfigError(conv.problems)
        version_node = entries["version"][1]
        before = len(conv.problems)
        conv.convert(version_node, Literal[1], "version", {})
        if len(conv.problems) > before:
            raise ConfigError(conv.problems)
        conv.problems.clear()  # entries() runs again below and reports duplicates once
        values = conv.fields_of(root, GatewayConfig, "")
        cross_checks(conv, values, profile_exists, profile_names, profiles)
    except RecursionError:  # a cycle the checks above do not know of: still one line
        raise fail(1, 1, "the document refers to itself too deeply (aliases?)") from None
    except TooBig:
        raise fail(
            1, 1, f"the document expands to more than {conv.max_visits} values (aliases?)"
        ) from None
    if conv.problems:
        conv.problems.sort(key=lambda p: (p.line or 0, p.col or 0))
        raise ConfigError(conv.problems)
    return GatewayConfig(**values, source_path=file, marks=conv.marks)


def load_config(
    path: str | os.PathLike[str],
    *,
    profile_exists: Callable[[str], bool] | None = None,
    profile_names: Collection[str] | None = None,
    profiles: ProfileSource | None = None,
) -> GatewayConfig:
    """Read and validate a gateway config file; relative paths in it resolve against its
    directory. See ``parse_config`` for the profile check.

    Raises ``ConfigError`` (a ``UsageError``: exit 2) listing every problem, or one problem
    without line/col when the file cannot be read or is not UTF-8 text.
    """
    file = os.fspath(path)
    text = decode(file, what="gateway config", error=ConfigError, max_bytes=MAX_CONFIG_BYTES)
    return parse_config(
        text,
        file=file,
        base_dir=os.path.dirname(os.path.abspath(file)),
        profile_exists=profile_exists,
        profile_names=profile_names,
        profiles=profiles,
    )


def resolve_uplink_password(
    cfg: GatewayConfig, environ: Mapping[str, str] | None = None
) -> Secret | None:
    """The MQTT password from ``uplink.password_env`` / ``password_file`` (``None`` if neither).

    Raises ``ConfigError`` pointing at the config line when the variable is unset or the file
    cannot be read; the message never contains the secret.
    """
    up = cfg.uplink
    try:
        return resolve_secret(env=up.password_env, file=up.password_file, environ=environ)
    except SecretError as exc:
        key = "uplink.password_env" if up.password_env is not None else "uplink.password_file"
        line, col = cfg.marks.get(key, (None, None))
        message = str(exc).removeprefix("password: ")
        raise ConfigError([Problem(cfg.source_path, line, col, key, message)]) from None
