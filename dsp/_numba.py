"""The one place that sets numba defaults for dsp kernels.

Every kernel is compiled with ``cache=True`` (compiled code is reused across processes, so the
daemon does not pay the compile time at each start) and ``nogil=True`` (the daemon runs kernels
in worker threads off the asyncio loop, and they must not hold the GIL). ``fastmath`` stays off:
kernels are checked against scipy to 1e-6 relative.

Where the cache lives is numba's business: ``NUMBA_CACHE_DIR`` when set (the daemon points it at
its state directory; a read-only install must set it), else ``__pycache__`` beside the sources,
else a per-user cache directory. np.fft inside kernels comes from rocket-fft, which registers
itself with numba on install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

__all__ = ["jit"]

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """``numba.njit(cache=True, nogil=True)``: the decorator for every dsp kernel."""
    return numba.njit(cache=True, nogil=True)(func)  # type: ignore[return-value]
