"""The outbox's degraded mode buffer: events the disk refused, held in memory until it takes
writes again, and the few words saying why it refused.

At most ``MAX_HELD`` events; when full, the oldest non-alarm goes first (the oldest alarm if
all are alarms). A held event is numbered only when it reaches the disk, so a crash can never
reuse a seq. Telemetry is never held (the outbox counts it dropped).
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Iterator

from edge_agent.outbox.store import Row

__all__ = ["MAX_HELD", "HeldEvents", "short_reason"]

MAX_HELD = 1000  # events held in memory while the disk refuses writes


class HeldEvents:
    """Accepted events waiting for the disk, in acceptance order."""

    def __init__(self, max_n: int | None = None) -> None:
        self.max_n = MAX_HELD if max_n is None else max_n
        self._rows: deque[Row] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def hold(self, row: Row) -> Row | None:
        """Keep ``row``; returns the one it pushed out when full (None if none)."""
        victim = None
        if len(self._rows) >= self.max_n:
            at = next((i for i, r in enumerate(self._rows) if not r.sev.is_alarm), 0)
            victim = self._rows[at]
            del self._rows[at]
        self._rows.append(row)
        return victim

    def oldest(self, n: int) -> list[Row]:
        return [self._rows[i] for i in range(min(n, len(self._rows)))]

    def release(self, n: int) -> None:
        """Forget the ``n`` oldest (they reached the disk)."""
        for _ in range(n):
            self._rows.popleft()


def short_reason(exc: BaseException) -> str:
    """A few words for STATUS= and the log: what the operator has to fix."""
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text or "no space" in text:
        return "disk full"
    if code == errno.EROFS or "readonly" in text or "read-only" in text:
        return "read-only"
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        return "no write permission"
    if "unable to open" in text:
        return "cannot open the database"
    if "disk i/o error" in text or code == errno.EIO:
        return "disk I/O error"
    return str(exc).split("\n")[0][:80]
