"""Where the compiled dsp kernels are kept between runs (numba's ``NUMBA_CACHE_DIR``).

numba keys a cached kernel on its own source file's timestamp and size only. A kernel that
calls a kernel of another file (``features._reduce_kernel`` calls ``spectra._row_sums``) keeps
the callee's old machine code after an upgrade that changed only the callee's file, and would
silently compute with it. So every command keeps the cache in a directory named after a
fingerprint of every dsp source file: new sources, new directory, everything compiled afresh
once; the directories of older sources are removed. Under: the daemon's state directory (or
systemd's cache directory), the demo's ``.cache/numba``, the user's cache for the others.

A ``NUMBA_CACHE_DIR`` set by whoever starts us (the systemd unit, an installer warming the
cache) is the base the versioned directory goes under; one that already names the current
version (the Makefile's) is kept as it is. Nothing here imports dsp: the resident daemon never
imports numba.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

__all__ = ["dsp_fingerprint", "ensure_numba_cache_dir", "kernel_cache_dir", "user_cache_base"]

PREFIX = "dsp-"


def dsp_fingerprint(package_dir: Path | None = None) -> str:
    """12 hex digits of sha256 over the dsp package's ``.py`` files (names and contents)."""
    if package_dir is None:
        spec = importlib.util.find_spec("dsp")  # finds, does not import
        if spec is None or not spec.submodule_search_locations:
            return "unknown"
        package_dir = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def kernel_cache_dir(base: Path, fingerprint: str | None = None) -> Path:
    """``base/dsp-<fingerprint>`` (base itself when it already is that directory), with the
    other ``dsp-*`` directories beside it removed (compiled for sources no longer installed).
    Removal is best effort: a directory we cannot remove costs disk, never a start."""
    current = PREFIX + (fingerprint or dsp_fingerprint())
    if base.name == current:
        base = base.parent
    try:
        stale = [p for p in base.iterdir() if p.name.startswith(PREFIX) and p.name != current]
    except OSError:
        stale = []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return base / current


def ensure_numba_cache_dir(default_base: Path | None) -> None:
    """Point numba's cache at the installed dsp sources' own directory, before anything imports
    ``dsp`` (numba reads ``NUMBA_CACHE_DIR`` once, at import; ``cache=True`` raises on a
    read-only tree). Under it: ``NUMBA_CACHE_DIR`` as set, else systemd's CacheDirectory, else
    ``default_base`` (the state directory's ``numba-cache``); with none of them numba keeps its
    default (``__pycache__`` beside the sources)."""
    cache = os.environ.get("CACHE_DIRECTORY")  # set by systemd's CacheDirectory=
    if os.environ.get("NUMBA_CACHE_DIR"):
        base = Path(os.environ["NUMBA_CACHE_DIR"])
    elif cache:
        base = Path(cache.split(":")[0]) / "numba"
    elif default_base is not None:
        base = default_base
    else:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(kernel_cache_dir(base))


def user_cache_base() -> Path | None:
    """For the commands a user runs at a laptop (``analyze``, ``locate``, ...):
    ``$XDG_CACHE_HOME/edge-agent/numba`` (``~/.cache`` by default), or None where it cannot be
    made (no home, read-only): numba then keeps its own default."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    base = Path(root) / "edge-agent" / "numba"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return base if os.access(base, os.W_OK) else None
