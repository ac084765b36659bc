"""Keep the daemon's memory to what it uses: refuse test-only packages that libraries import
opportunistically when they happen to be installed, and hand back the pages of a shared
library a process no longer runs (the analysis worker's LLVM).

numba imports ``scipy.linalg.cython_blas``/``cython_lapack`` when it sets up its CPU target and
rocket-fft imports ``scipy.fft`` (which pulls in ``scipy.special``) when numba loads its
extensions, both only *if scipy is importable*. scipy is a test-only dependency of edge-agent
(the DSP parity tests): on a gateway it is not installed, but in a development venv it is, and
there it costs the daemon about 19 MB of RSS for code no kernel calls (dsp uses numpy.fft via
rocket-fft and no numpy.linalg). ``edge-agent run`` therefore makes scipy unimportable before
anything imports numba, so the daemon measured here is the daemon that runs in the field.

numba loads LLVM (``libllvmlite.so``, 170 MB on x86_64) to compile kernels or load them from
its cache. Once the kernels are loaded, running them never calls into LLVM again, yet the
pages the loader and the kernel loading touched stay mapped: 75-95 MB of the analysis
worker's RSS on this machine's kernel, which maps file pages in large folios
(docs/benchmarks.md). ``page_out_library`` asks the kernel to drop them from this process
(``madvise(MADV_PAGEOUT)``, Linux 5.4+): clean file pages, read back from the page cache
should anything call into the library again, so it is safe at any time and costs only a
minor fault then. Elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import sys
import types
from collections.abc import Sequence

__all__ = ["TEST_ONLY_PACKAGES", "page_out_library", "refuse_test_only_imports"]

TEST_ONLY_PACKAGES = frozenset({"scipy"})
MADV_PAGEOUT = 21  # linux/mman.h, Linux 5.4


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


def page_out_library(name: str, maps_path: str = "/proc/self/maps") -> int:
    """Drop this process's resident pages of the shared library whose file name contains
    ``name`` (its read-only and executable mappings: clean file pages, never the library's
    written data). Returns the bytes of address space advised; 0 where the platform has no
    ``/proc`` maps or no ``madvise``."""
    try:
        with open(maps_path) as maps:
            ranges = []
            for line in maps:
                fields = line.split()
                if len(fields) >= 6 and name in fields[5] and "w" not in fields[1]:
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    ranges.append((start, end))
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for start, end in ranges:
        if madvise(start, end - start, MADV_PAGEOUT) == 0:  # EINVAL before Linux 5.4
            advised += end - start
    return advised
