"""Secrets (the MQTT password): a value type that never prints, and where it comes from.

A config file never holds a secret itself: it names an environment variable
(``password_env``) or a separate file (``password_file``, e.g. mode 0600 under
``/etc/edge-agent``). ``Secret`` wraps the value so that ``str``, ``repr``, f-strings, logs and
tracebacks show ``***``; only ``reveal()`` gives the value, at the one place that needs it
(the MQTT client).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from edge_agent.errors import UsageError

__all__ = ["MASK", "Secret", "SecretError", "resolve_secret"]

MASK = "***"
# A password file is a few bytes; refuse to read something that is clearly not one.
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretError(UsageError):
    """A secret could not be resolved (variable unset, file unreadable). Never holds the value."""


class Secret:
    """A string that shows as ``***`` everywhere except ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it straight to the library that needs it, never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling (multiprocessing, copy) would put the value into bytes someone may dump.
        raise TypeError("a Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)


def resolve_secret(
    *,
    env: str | None,
    file: str | None,
    environ: Mapping[str, str] | None = None,
    what: str = "password",
) -> Secret | None:
    """Read a secret from the environment variable ``env`` or the file ``file`` (one of them,
    or neither: then ``None``). A file's single trailing newline is dropped.

    Raises ``SecretError`` (a ``UsageError``) when both are given, the variable is unset or
    empty, or the file cannot be read. The message names the variable or file, never the value.
    """
    if env is not None and file is not None:
        raise SecretError(f"{what}: give either password_env or password_file, not both")
    if env is not None:
        value = (os.environ if environ is None else environ).get(env)
        if not value:
            raise SecretError(f"{what}: environment variable {env} is not set or empty")
        return Secret(value)
    if file is not None:
        try:
            with open(file, "rb") as f:
                raw = f.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise SecretError(f"{what}: cannot read {file}: {exc.strerror or exc}") from None
        except ValueError:  # a NUL byte in the path
            raise SecretError(f"{what}: cannot read {file!r}: not a valid path") from None
        if len(raw) > MAX_SECRET_FILE_BYTES:
            raise SecretError(f"{what}: {file} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"{what}: {file} is not UTF-8 text") from None
        if text.endswith("\n"):
            text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
        if not text:
            raise SecretError(f"{what}: {file} is empty")
        return Secret(text)
    return None
