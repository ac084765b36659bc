"""Whole documents: file bytes -> text -> composed YAML -> a format's root dataclass.

``read_file`` / ``read_text`` are what a format's loader calls (device profiles, site files);
``read_section`` reads a ``Section`` another format kept for its owner. Every problem, from an
unreadable file through a YAML syntax error to a bad field, becomes a ``Problem`` line in the
format's own ``ReadError`` subclass, all of a file's problems at once. The gateway config uses
the steps (``decode``, ``compose``) with its own version check in between.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import yaml

from yamlread.convert import MAX_NODE_VISITS, Checks, Converter, TooBig
from yamlread.fields import Section
from yamlread.partial import INVALID
from yamlread.problems import Problem, ReadError, has_other_line_breaks, text_position

# libyaml's composer (7x faster, benchmarks/formats.py) builds the same tree with the same
# positions; only its wording of a syntax error differs, so a document it refuses is composed
# again by the pure-Python one, whose message is the one we print. Absent without libyaml.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)

__all__ = ["MAX_FILE_BYTES", "compose", "decode", "read_file", "read_section", "read_text"]

# A gateway config or a profile is a few kB, a site file of a large district a few MB; anything
# far larger is the wrong file (or /dev/zero).
MAX_FILE_BYTES = 64 * 2**20

_SECRETISH_RE = re.compile(r"pass|secret|token|credential", re.IGNORECASE)

T = TypeVar("T")
ErrorType = Callable[[list[Problem]], ReadError]


def decode(
    file: str,
    *,
    what: str = "file",
    unreadable: str = "cannot read",
    error: ErrorType = ReadError,
    max_bytes: int = MAX_FILE_BYTES,
) -> str:
    """The text of ``file`` (UTF-8, a BOM dropped). Raises ``error`` with one problem
    without line/col when the file cannot be read (``{unreadable}: why``) or is too large
    (``not a {what}``), and at the first bad byte when it is not UTF-8 text."""
    label = unreadable
    try:
        with open(file, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise error([Problem(file, None, None, "", f"{label}: {exc.strerror or exc}")]) from None
    except ValueError:  # a NUL byte in the path
        raise error([Problem(file, None, None, "", f"{label}: not a valid path")]) from None
    if len(raw) > max_bytes:
        message = f"larger than {max_bytes // 2**20} MiB: not a {what}"
        raise error([Problem(file, None, None, "", message)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = text_position(raw.decode("utf-8", "replace"), exc.start)
        raise error([Problem(file, line, col, "", "not UTF-8 text")]) from None


def compose(text: str, file: str, *, error: ErrorType = ReadError) -> yaml.Node | None:
    """The composed YAML tree of ``text`` (``None`` for an empty document), every node with its
    position. Raises ``error`` with one ``YAML syntax: ...`` problem."""

    def fail(line: int, col: int, message: str) -> ReadError:
        return error([Problem(file, line, col, "", message)])

    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except (yaml.YAMLError, RecursionError):
            pass  # the pure-Python composer below words the problem (and is the reference)
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            line, col = 1, 1
        elif has_other_line_breaks(text):
            line, col = text_position(text, mark.index)
        else:
            line, col = mark.line + 1, mark.column + 1
        what = exc.problem or exc.context or "invalid YAML"
        raise fail(line, col, f"YAML syntax: {_redact(what, text, line)}") from None
    except yaml.reader.ReaderError as exc:
        line, col = text_position(text, exc.position)
        ch = exc.character
        shown = f"#x{ch:04x}" if isinstance(ch, int) else f"#x{ord(ch):04x}"
        raise fail(
            line, col, f"YAML syntax: unacceptable character {shown}: {exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise fail(1, 1, f"YAML syntax: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise fail(1, 1, "YAML nesting is too deep") from None


def read_text(
    text: str,
    cls: type[T],
    *,
    file: str,
    base_dir: str = "",
    error: ErrorType = ReadError,
    checks: Iterable[Callable[[Any], Checks]] = (),
    empty: str = "the file is empty",
    numbers_as_text: bool = False,
) -> T:
    """``text`` as ``cls``: every field converted and checked, then ``checks`` (functions of
    the whole record yielding ``(path, message)``, for rules across records). Raises
    ``error`` listing every problem, in file order."""
    root = compose(text, file, error=error)
    if root is None:
        raise error([Problem(file, 1, 1, "", empty)])
    conv = Converter(
        file,
        base_dir,
        max_visits=max(MAX_NODE_VISITS, len(text)),
        numbers_as_text=numbers_as_text,
        text=text,
    )
    return _read(conv, root, "", cls, error, checks)


def read_file(
    path: str | os.PathLike[str],
    cls: type[T],
    *,
    what: str = "file",
    error: ErrorType = ReadError,
    checks: Iterable[Callable[[Any], Checks]] = (),
    empty: str = "the file is empty",
    numbers_as_text: bool = False,
) -> T:
    """Read the file at ``path`` as ``cls`` (see ``read_text``); relative paths in it resolve
    against its directory. ``what`` names the kind of file in ``cannot read {what}: ...``."""
    file = os.fspath(path)
    text = decode(file, what=what, unreadable=f"cannot read {what}", error=error)
    return read_text(
        text,
        cls,
        file=file,
        base_dir=os.path.dirname(os.path.abspath(file)),
        error=error,
        checks=checks,
        empty=empty,
        numbers_as_text=numbers_as_text,
    )


def read_section(
    section: Section,
    cls: type[T],
    *,
    error: ErrorType = ReadError,
    checks: Iterable[Callable[[Any], Checks]] = (),
    numbers_as_text: bool = False,
) -> T:
    """A ``Section`` kept by another format, read as ``cls``; problems name the section's
    file, line and path (``scenarios.leaks[0].pipe``)."""
    conv = Converter(
        section.file,
        section.base_dir,
        max_visits=max(MAX_NODE_VISITS, 50 * _node_count(section.node)),
        numbers_as_text=numbers_as_text,
    )
    return _read(conv, section.node, section.path, cls, error, checks)


def _read(
    conv: Converter,
    root: yaml.Node,
    path: str,
    cls: type[T],
    error: ErrorType,
    checks: Iterable[Callable[[Any], Checks]],
) -> T:
    if not path and not isinstance(root, yaml.MappingNode):
        line, col = conv.pos(root)
        message = f"expected a mapping at the top level, got {conv.describe(root)}"
        raise error([Problem(conv.file, line, col, "", message)])
    try:
        obj = conv.convert(root, cls, path, {})
        if obj is not INVALID:
            for check in checks:
                conv.check(check, obj, root, path)
    except RecursionError:  # aliases nesting deeper than the checks above know
        message = "the document refers to itself too deeply (aliases?)"
        raise error([Problem(conv.file, 1, 1, "", message)]) from None
    except TooBig:
        message = f"the document expands to more than {conv.max_visits} values (aliases?)"
        raise error([Problem(conv.file, 1, 1, "", message)]) from None
    if conv.problems:
        conv.problems.sort(key=lambda p: (p.line or 0, p.col or 0))
        raise error(conv.problems)
    return obj


def _node_count(node: yaml.Node) -> int:
    """Nodes under ``node`` as written (aliases counted once)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack += (k, v)
    return len(seen)


def _redact(message: str, text: str, line: int) -> str:
    """PyYAML quotes the offending token (``found undefined alias 'hunter2'``); on a line that
    looks like it holds a secret, the token must not reach a terminal or a log."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if _SECRETISH_RE.search(source):
        return re.sub(r"'[^']*'", "'***'", message)
    return message
