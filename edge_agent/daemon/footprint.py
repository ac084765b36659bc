"""Keep the daemon's memory to what it uses: refuse test-only packages that libraries import
opportunistically when they happen to be installed.

numba imports ``scipy.linalg.cython_blas``/``cython_lapack`` when it sets up its CPU target and
rocket-fft imports ``scipy.fft`` (which pulls in ``scipy.special``) when numba loads its
extensions, both only *if scipy is importable*. scipy is a test-only dependency of edge-agent
(the DSP parity tests): on a gateway it is not installed, but in a development venv it is, and
there it costs the daemon about 19 MB of RSS for code no kernel calls (dsp uses numpy.fft via
rocket-fft and no numpy.linalg). ``edge-agent run`` therefore makes scipy unimportable before
anything imports numba, so the daemon measured here is the daemon that runs in the field.
"""

from __future__ import annotations

import importlib.abc
import sys
import types
from collections.abc import Sequence

__all__ = ["TEST_ONLY_PACKAGES", "refuse_test_only_imports"]

TEST_ONLY_PACKAGES = frozenset({"scipy"})


class _RefuseTestOnly(importlib.abc.MetaPathFinder):
    """A finder that answers "not installed" for the test-only packages."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> None:
        if fullname.partition(".")[0] in TEST_ONLY_PACKAGES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (test-only)", name=fullname)
        return None


def refuse_test_only_imports() -> bool:
    """Make the test-only packages unimportable in this process (idempotent). Returns False
    when one was imported already (too late to save its memory)."""
    if not any(isinstance(f, _RefuseTestOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefuseTestOnly())
    return not any(name in sys.modules for name in TEST_ONLY_PACKAGES)
