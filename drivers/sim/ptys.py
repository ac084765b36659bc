"""A pair of linked serial ptys made by socat: a virtual RS-485 cable for RTU tests.

``PtyPair(dir)`` names two links, ``<dir>/bus-server`` and ``<dir>/bus-client`` by default;
``start()`` runs ``socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`` and waits until
both links exist; bytes written to one end come out of the other. ``stop()`` ends socat and the
links disappear, exactly what a USB-RS485 adapter does when it is pulled out; ``start()`` again
brings them back under the same names (a re-plugged adapter). ``vanish()`` / ``restore()`` are
those two spelled for tests.

    with PtyPair(tmp_path) as ptys:
        server = SimServer("rtu", serial_port=ptys.server_path)
        ... connect an RTU client to ptys.client_path ...

Raises ``PtyError`` (an ``OSError``) when socat is missing or the links do not appear.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["PtyError", "PtyPair"]

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class PtyError(OSError):
    """socat is missing, failed, or its pty links did not appear in time."""


class PtyPair:
    """Two linked ptys under ``directory`` (see the module docstring)."""

    def __init__(
        self, directory: str | os.PathLike, *, server_name="bus-server", client_name="bus-client"
    ) -> None:
        self.directory = Path(directory)
        self.server_path = str(self.directory / server_name)
        self.client_path = str(self.directory / client_name)
        self._process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PtyPair:
        """Start socat and wait (up to 10 s) until both links exist."""
        if self.running:
            return self
        socat = shutil.which("socat")
        if socat is None:
            raise PtyError("socat is not installed (apt-get install socat)")
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in (self.server_path, self.client_path):
            if os.path.lexists(path):
                os.unlink(path)  # a stale link from a killed socat
        self._process = subprocess.Popen(
            [
                socat,
                "-d",
                "-d",
                f"pty,raw,echo=0,link={self.server_path}",
                f"pty,raw,echo=0,link={self.client_path}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PtyError(f"socat exited with {self._process.returncode}")
            if os.path.exists(self.server_path) and os.path.exists(self.client_path):
                return self
            time.sleep(0.02)
        self.stop()
        raise PtyError(f"socat links did not appear in {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """End socat (idempotent); the links disappear with it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        for path in (self.server_path, self.client_path):
            if os.path.lexists(path):
                os.unlink(path)

    def vanish(self) -> None:
        """The adapter is pulled out: both ports disappear."""
        self.stop()

    def restore(self) -> None:
        """The adapter is plugged back in: the same port names exist again."""
        self.start()

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
