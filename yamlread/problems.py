"""Problems of a file: ``Problem`` (one line: ``file:line:col: path: message``), ``ReadError``
holding all of them, and the small formatting rules every message follows (values shown in
quotes and cut short, did-you-mean suggestions, YAML paths like ``devices[2].unit_id``)."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SHOWN_CHARS",
    "Problem",
    "ReadError",
    "cut",
    "fmt_num",
    "join_path",
    "printable",
    "show_value",
    "suggest",
]

# Values echoed in messages are cut to this many characters.
MAX_SHOWN_CHARS = 40

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file. ``line``/``col`` are 1-based (``None`` when the
    problem is the file as a whole, e.g. unreadable); ``path`` is the YAML path
    (``devices[2].unit_id``, indexes from 0), ``""`` for the document itself."""

    file: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        line = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        # One problem, one line: whatever a value or file name holds, never a raw line break
        # or control character on the terminal.
        return line if line.isprintable() else "".join(_escape_char(ch) for ch in line)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ReadError(Exception):
    """A file could not be read into its dataclasses: ``problems`` lists every problem and
    ``str()`` gives one line per problem. Each format subclasses it (``ConfigError``,
    ``SiteError``, ``ProfileError``); given a plain message instead of problems (a problem
    that belongs to no file, e.g. an unknown profile name), ``problems`` is empty."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems)
        else:
            self.problems = list(problems)
            super().__init__("\n".join(str(p) for p in self.problems))


def join_path(path: str, key: str) -> str:
    """``devices[2]`` + ``unit_id`` -> ``devices[2].unit_id``; odd keys in brackets."""
    part = key if _PLAIN_KEY_RE.fullmatch(key) else repr(key)
    if not _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def fmt_num(x: float) -> str:
    """1.0 -> '1', 0.5 -> '0.5'."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def cut(text: str) -> str:
    """``text`` cut to ``MAX_SHOWN_CHARS`` (a 400-digit number does not fit a message)."""
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def show_value(text: str) -> str:
    """A value quoted for a message, cut to ``MAX_SHOWN_CHARS``."""
    return repr(cut(text))


def _escape_char(ch: str) -> str:
    return ch if ch.isprintable() else repr(ch)[1:-1]


def printable(text: str) -> str:
    """``text`` as is when it prints on one line, else its escaped repr."""
    return text if text.isprintable() else repr(text)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)``, else the list of choices when short, else ``""``."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if 0 < len(choices) <= 12:
        return f" (expected one of: {', '.join(choices)})"
    return ""


# YAML also ends a line at a lone CR, NEL, LS and PS; an editor (and the user reading our
# "file:line:col") counts only LF. A text holding any of them is counted by hand.
_OTHER_LINE_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


def has_other_line_breaks(text: str) -> bool:
    """Whether YAML's line numbers for ``text`` differ from an editor's."""
    return _OTHER_LINE_BREAKS.search(text) is not None


def text_position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character ``index`` in ``text``, lines ended by LF only."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
