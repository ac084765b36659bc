"""The compiled kernels' cache: one directory per version of the dsp sources.

The first test shows why (numba keeps a kernel compiled against another file's old code), the
rest that the directory follows the sources wherever the cache's base comes from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.kernel_cache import (
    dsp_fingerprint,
    ensure_numba_cache_dir,
    kernel_cache_dir,
    user_cache_base,
)

REPO = Path(__file__).resolve().parents[2]

CALLEE = "import numba\n\n@numba.njit(cache=True)\ndef g():\n    return {value}\n"
CALLER = (
    "import numba\nfrom kpkg.callee import g\n\n"
    "@numba.njit(cache=True)\ndef f():\n    return g() + 10\n"
)


def _package(root: Path, value: int) -> Path:
    pkg = root / "kpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "caller.py").write_text(CALLER)
    callee = pkg / "callee.py"
    callee.write_text(CALLEE.format(value=value))
    stamp = 1_700_000_000 + value * 100  # a later, different timestamp for each version
    os.utime(callee, (stamp, stamp))
    return pkg


def _run_caller(root: Path, cache: Path) -> int:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, "-c", "from kpkg.caller import f; print(f())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(out.stdout.strip())


def test_a_new_callee_needs_a_new_directory_numba_alone_keeps_the_old_code(tmp_path):
    pkg = _package(tmp_path, 1)
    shared = tmp_path / "shared-cache"
    keyed = tmp_path / "keyed-cache"
    assert _run_caller(tmp_path, shared) == 11
    assert _run_caller(tmp_path, kernel_cache_dir(keyed, dsp_fingerprint(pkg))) == 11
    _package(tmp_path, 2)  # an upgrade that changed only the callee's file
    # numba's own check looks at the caller's file only: the old callee's code is reused
    assert _run_caller(tmp_path, shared) == 11
    assert _run_caller(tmp_path, kernel_cache_dir(keyed, dsp_fingerprint(pkg))) == 12
    assert len(list(keyed.iterdir())) == 1  # the old version's directory is gone


def test_the_fingerprint_follows_names_and_contents(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    first = dsp_fingerprint(pkg)
    assert first == dsp_fingerprint(pkg)
    assert len(first) == 12
    (pkg / "notes.txt").write_text("not source")
    assert dsp_fingerprint(pkg) == first
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    changed = dsp_fingerprint(pkg)
    assert changed != first
    (pkg / "sub" / "b.py").rename(pkg / "sub" / "c.py")
    assert dsp_fingerprint(pkg) not in (first, changed)


def test_the_installed_dsp_is_the_one_fingerprinted():
    assert dsp_fingerprint() == dsp_fingerprint(REPO / "dsp")


def test_only_older_dsp_directories_are_removed(tmp_path):
    for name in ("dsp-aaaaaaaaaaaa", "dsp-bbbbbbbbbbbb", "dsp_numbas_own", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.nbi").write_text("x")
    chosen = kernel_cache_dir(tmp_path, "bbbbbbbbbbbb")
    assert chosen == tmp_path / "dsp-bbbbbbbbbbbb"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dsp-bbbbbbbbbbbb",
        "dsp_numbas_own",
        "other",
    ]


def test_a_missing_base_is_no_error(tmp_path):
    assert kernel_cache_dir(tmp_path / "nowhere", "cccccccccccc") == (
        tmp_path / "nowhere" / "dsp-cccccccccccc"
    )


@pytest.mark.parametrize(
    ("env", "expected_base"),
    [
        ({"NUMBA_CACHE_DIR": "{tmp}/unit", "CACHE_DIRECTORY": "{tmp}/cache"}, "unit"),
        ({"CACHE_DIRECTORY": "{tmp}/cache:{tmp}/other"}, "cache/numba"),
        ({}, "state/numba-cache"),
    ],
)
def test_the_daemon_picks_a_versioned_directory(monkeypatch, tmp_path, env, expected_base):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    ensure_numba_cache_dir(tmp_path / "state" / "numba-cache")
    chosen = Path(os.environ["NUMBA_CACHE_DIR"])
    assert chosen == tmp_path / expected_base / f"dsp-{dsp_fingerprint()}"
    ensure_numba_cache_dir(tmp_path / "state" / "numba-cache")  # the worker, the Makefile's
    assert Path(os.environ["NUMBA_CACHE_DIR"]) == chosen  # already versioned: kept


def test_nothing_to_go_on_leaves_numba_its_default(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    ensure_numba_cache_dir(None)
    assert "NUMBA_CACHE_DIR" not in os.environ


def test_a_laptop_command_compiles_into_the_users_cache(tmp_path):
    """``edge-agent analyze`` with no NUMBA_CACHE_DIR: the kernels go to the user's cache, in
    the directory of these dsp sources (a real run: the WAV is analysed, the cache filled)."""
    import wave

    import numpy as np

    wav = tmp_path / "quiet.wav"
    samples = (np.random.default_rng(3).normal(0.0, 0.01, 4000 * 4) * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(4000)
        out.writeframes(samples.tobytes())
    proc = run_cli_with_xdg_cache(tmp_path, ["analyze", str(wav), "--json"], timeout=600)
    assert proc.returncode == 0, proc.stderr
    versioned = tmp_path / "xdg" / "edge-agent" / "numba" / f"dsp-{dsp_fingerprint()}"
    assert any(p.suffix == ".nbc" for p in versioned.rglob("*"))


def test_no_writable_home_leaves_numba_its_default(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert user_cache_base() is None


@pytest.mark.parametrize(("command", "makes_cache"), [("analyze", True), ("scan", False)])
def test_only_commands_that_compile_make_a_users_cache(tmp_path, command, makes_cache):
    proc = run_cli_with_xdg_cache(tmp_path, [command, "--help"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "xdg" / "edge-agent" / "numba").is_dir() == makes_cache


def run_cli_with_xdg_cache(tmp_path, args, timeout):
    """``edge-agent ARGS`` in a child with no cache directory set but XDG_CACHE_HOME in tmp."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "CACHE_DIRECTORY")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
