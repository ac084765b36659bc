"""YAML -> frozen config dataclasses, with every problem reported as ``file:line:col: path: what``.

The YAML is composed (not constructed) with PyYAML's safe loader so every value keeps its
position; ``convert.Converter`` turns the nodes into the dataclasses of ``model`` collecting
all problems in one pass, ``crosscheck`` then checks the file as a whole. ``load_config``
either returns a ``GatewayConfig`` or raises ``ConfigError`` holding every ``Problem``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from typing import Literal

import yaml

from edge_agent.config.convert import MAX_NODE_VISITS, Converter, TooBig, config_fields
from edge_agent.config.crosscheck import ProfileSource, cross_checks, registry_profiles
from edge_agent.config.model import CONFIG_VERSION, GatewayConfig
from edge_agent.config.problems import ConfigError, Problem
from edge_agent.config.secrets import Secret, SecretError, resolve_secret

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

_SECRETISH_RE = re.compile(r"pass|secret|token|credential", re.IGNORECASE)


def _redact(message: str, text: str, line: int) -> str:
    """PyYAML quotes the offending token (``found undefined alias 'hunter2'``); on a line that
    looks like it holds a secret, the token must not reach a terminal or a log."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if _SECRETISH_RE.search(source):
        return re.sub(r"'[^']*'", "'***'", message)
    return message


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


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
    conv = Converter(file, base)

    def fail(line: int, col: int, message: str) -> ConfigError:
        return ConfigError([Problem(file, line, col, "", message)])

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise fail(line, col, f"YAML syntax: {_redact(what, text, line)}") from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        ch = exc.character
        shown = f"#x{ch:04x}" if isinstance(ch, int) else f"#x{ord(ch):04x}"
        raise fail(
            line, col, f"YAML syntax: unacceptable character {shown}: {exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise fail(1, 1, f"YAML syntax: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise fail(1, 1, "YAML nesting is too deep") from None
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
            1, 1, f"the document expands to more than {MAX_NODE_VISITS} values (aliases?)"
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
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            [Problem(file, None, None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(
            [Problem(file, None, None, "", "cannot read: not a valid path")]
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        message = f"larger than {MAX_CONFIG_BYTES // 2**20} MiB: not a gateway config"
        raise ConfigError([Problem(file, None, None, "", message)])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw.decode("utf-8", "replace"), exc.start)
        raise ConfigError([Problem(file, line, col, "", "not UTF-8 text")]) from None
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
