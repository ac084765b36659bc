"""systemd glue without a dependency: sd_notify datagrams and a watchdog fed by real progress.

``Notifier`` writes ``READY=1``, ``STATUS=...``, ``WATCHDOG=1`` and ``STOPPING=1`` to
``$NOTIFY_SOCKET`` (a leading ``@`` names an abstract socket). Outside systemd it does nothing.

``ProgressTracker`` is what makes the watchdog honest: each loop that must keep moving (one per
bus, the uplink, the leak pipeline) registers with a deadline and calls ``beat(name)`` each time
it completes a cycle. ``WATCHDOG=1`` is sent only while every registered loop has beaten within
its deadline, so a wedged poll loop or a stuck uplink thread gets the daemon restarted, while a
broker that is down (the uplink loop still cycling through reconnects) does not.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Notifier", "ProgressTracker", "Stalled", "watchdog_interval_s"]


class Notifier:
    """Send sd_notify messages; a no-op when ``NOTIFY_SOCKET`` is unset.

    Sending never raises: a journal line about a lost notification is all an operator could
    do with it, and the watchdog itself will act if notifications keep failing.
    """

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | bytes | None = None
        if addr:
            # Abstract namespace: '@name' on the command line, '\0name' to the kernel.
            self._address = "\0" + addr[1:] if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``READY=1``, ``STATUS=...``); True if the datagram left."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    # Never block the event loop: a receiver that stopped reading (its queue
                    # full) costs a notification, not the daemon.
                    self._sock.setblocking(False)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                self.last_error = f"sd_notify to {self._address!r} failed: {exc}"
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def reloading(self) -> bool:
        return self.notify(RELOADING=1)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """How often to ping: half of ``WATCHDOG_USEC``, or None when no watchdog is armed.

    ``WATCHDOG_PID``, when set, must be our pid (systemd sets it for the main process only).
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 1e6 / 2.0


@dataclass(frozen=True, slots=True)
class Stalled:
    """A loop that missed its deadline: ``name`` and how long since it last made progress."""

    name: str
    silent_s: float
    deadline_s: float


class ProgressTracker:
    """Loops register a deadline and beat on progress; ``stalled()`` names the ones that stopped.

    Thread-safe: the uplink's network thread and the dsp workers beat from other threads.
    ``clock`` is monotonic seconds (injected in tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._loops: dict[str, tuple[float, float]] = {}  # name -> (deadline_s, last beat)

    def register(self, name: str, deadline_s: float) -> None:
        """Start watching ``name``: it counts as fresh now and must beat within ``deadline_s``."""
        if deadline_s <= 0:
            raise ValueError(f"deadline for {name!r} must be > 0, got {deadline_s}")
        with self._lock:
            self._loops[name] = (float(deadline_s), self._clock())

    def unregister(self, name: str) -> None:
        with self._lock:
            self._loops.pop(name, None)

    def beat(self, name: str) -> None:
        """``name`` completed a cycle. Unknown names are ignored (a loop being torn down)."""
        now = self._clock()
        with self._lock:
            entry = self._loops.get(name)
            if entry is not None:
                self._loops[name] = (entry[0], now)

    def stalled(self) -> list[Stalled]:
        now = self._clock()
        with self._lock:
            return [
                Stalled(name, now - last, deadline)
                for name, (deadline, last) in sorted(self._loops.items())
                if now - last > deadline
            ]

    def healthy(self) -> bool:
        return not self.stalled()

    @property
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._loops)
