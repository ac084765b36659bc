"""Is the system clock trustworthy? A Raspberry Pi has no RTC: until NTP (or GPS) sets the
clock after boot, timestamps may be hours or years off. Events accepted meanwhile carry
``"tsq": "unsynced"`` (see docs/mqtt.md) so a consumer can treat their ``ts`` with care.

The kernel knows: ``adjtimex(2)`` returns ``TIME_ERROR`` and sets ``STA_UNSYNC`` while no time
daemon has disciplined the clock (chrony, systemd-timesyncd and ntpd all clear it). We read it
through ctypes without modifying anything; where adjtimex is unavailable we fall back to a
plausibility floor (a clock before ``MIN_PLAUSIBLE_EPOCH_S`` is certainly wrong).
``SyncClock`` is injectable: tests pass their own ``time_fn`` and ``probe``.

``Clock`` is the time the daemon's parts are given (``edge_agent.daemon.app.WallClock`` in
production; the simulator's clock in the demo, so readings, events and scenarios share one
time base).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "MIN_PLAUSIBLE_EPOCH_S",
    "SYNC_RECHECK_S",
    "Clock",
    "SyncClock",
    "kernel_clock_synchronised",
]

MIN_PLAUSIBLE_EPOCH_S = 1_735_689_600.0  # 2025-01-01T00:00Z: earlier than this build, so wrong
SYNC_RECHECK_S = 10.0  # the kernel flag changes rarely: ask at most this often

_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    # Leading fields of struct timex (<sys/timex.h>); the tail is padding we never read. The
    # kernel writes the whole struct, so the buffer is generously oversized.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_tail", ctypes.c_byte * 512),
    ]


@functools.cache
def _adjtimex() -> Callable[..., int] | None:
    """libc's adjtimex, looked up once: ``find_library`` runs ``ldconfig -p`` (a subprocess)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None


def kernel_clock_synchronised() -> bool | None:
    """True/False from the kernel's view (read-only adjtimex), None when it cannot be asked."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    tx = _Timex()  # modes = 0: query only
    state = adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)


class SyncClock:
    """Wall-clock time plus whether it is synchronised. Thread-safe.

    ``probe`` returns True/False/None (None = unknown: trust the plausibility floor only).
    The probe result is cached for ``recheck_s`` seconds of monotonic time.
    """

    def __init__(
        self,
        time_fn: Callable[[], float] = time.time,
        probe: Callable[[], bool | None] = kernel_clock_synchronised,
        *,
        recheck_s: float = SYNC_RECHECK_S,
        monotonic_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self._time = time_fn
        self._probe = probe
        self._recheck_s = recheck_s
        self._monotonic = monotonic_fn
        self._lock = threading.Lock()
        self._cached: bool | None = None
        self._checked_at = float("-inf")

    def now(self) -> float:
        """Epoch seconds."""
        return self._time()

    def is_synchronised(self, ts: float | None = None) -> bool:
        """Whether a timestamp taken now (``ts``, default the current time) can be trusted."""
        ts = self._time() if ts is None else ts
        if ts < MIN_PLAUSIBLE_EPOCH_S:
            return False
        with self._lock:
            mono = self._monotonic()
            if mono - self._checked_at >= self._recheck_s:
                self._cached = self._probe()
                self._checked_at = mono
            known = self._cached
        return True if known is None else known


class Clock(Protocol):
    """Epoch time and a sleep on the same time base."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...
