"""Real serial-port failures for tests, made by the operating system, not mocked.

- ``refuses_even_parity(path)``: whether the OS refuses even parity on that port. A Linux pty
  has no parity: its driver drops PARENB from the settings, and glibc's ``tcsetattr`` checks
  what the kernel kept and reports the dropped bit as EINVAL (what pyserial raises as
  ``termios.error``), just as an adapter whose driver lacks a setting does. Tests that need a
  refusing port skip, saying why, on a C library that does not check (musl).
- ``denied(path)``: a context giving a path to the same port that the process may not open:
  as root the effective user becomes nobody for the block (root may open anything), otherwise
  the device node's permissions are cleared for the block.
"""

from __future__ import annotations

import contextlib
import os
import termios
from collections.abc import Iterator

__all__ = ["NOBODY", "denied", "refuses_even_parity"]

NOBODY = 65534


def refuses_even_parity(path: str) -> bool:
    """True when setting 8E1 on ``path`` fails (with EINVAL), as on a glibc Linux pty."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[2] |= termios.PARENB
        try:
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error:
            return True
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def denied(path: str) -> Iterator[str]:
    """Within the block, opening the yielded path fails with EACCES (see the module doc)."""
    device = os.path.realpath(path)
    if os.geteuid() == 0:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            yield device
        finally:
            os.seteuid(0)
            os.setegid(0)
        return
    mode = os.stat(device).st_mode & 0o7777
    os.chmod(device, 0)
    try:
        yield device
    finally:
        os.chmod(device, mode)
