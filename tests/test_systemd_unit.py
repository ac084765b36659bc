"""The shipped systemd unit: systemd-analyze verify, the offline security score, and the
settings the daemon relies on (Type=notify, watchdog, directories, device access)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "edge-agent.service"
INSTALL = ROOT / "systemd" / "install.sh"
MAX_EXPOSURE = 3.0

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


@needs_systemd_analyze
def test_systemd_analyze_verify(tmp_path):
    """The unit parses cleanly; ExecStart points at this venv's entry point so the check of
    the binary's existence is real."""
    entry = Path(sys.executable).parent / "edge-agent"
    assert entry.exists(), entry
    text = UNIT.read_text().replace("/opt/edge-agent/venv/bin/edge-agent", str(entry))
    unit = tmp_path / "edge-agent.service"
    unit.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "edge-agent" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


@needs_systemd_analyze
def test_security_exposure_is_at_most_3():
    """systemd-analyze security --offline=yes scores the hardening (lower is better)."""
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("StateDirectory", "edge-agent"),
        ("CacheDirectory", "edge-agent"),
        ("ConfigurationDirectory", "edge-agent"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("DeviceAllow", "char-ttyUSB rw"),
        ("DeviceAllow", "char-ttyAMA rw"),
        ("SupplementaryGroups", "dialout"),
        ("Environment", "NUMBA_CACHE_DIR=/var/cache/edge-agent/numba"),
        ("RestartPreventExitStatus", "2"),
        ("Environment", "MALLOC_ARENA_MAX=2"),
        ("OOMPolicy", "continue"),  # an OOM-killed analysis worker must not stop the unit
        ("SystemCallFilter", "setrlimit prlimit64"),  # the worker's memory limit
    ],
)
def test_unit_settings(key, value):
    """What the daemon and the docs rely on is present."""
    assert value in _settings().get(key, []), f"{key}={value} missing from {UNIT.name}"


def test_watchdog_is_armed_and_execstart_uses_the_directories():
    settings = _settings()
    assert int(settings["WatchdogSec"][0]) >= 30
    (exec_start,) = settings["ExecStart"]
    assert "--state-dir /var/lib/edge-agent" in exec_start
    assert "--config /etc/edge-agent/gateway.yaml" in exec_start
    assert "MemoryDenyWriteExecute" not in settings  # numba's JIT needs W+X pages


def test_install_script_dry_run_lists_every_step():
    """--dry-run as a normal user prints the steps, touches nothing, exits 0."""
    if not (ROOT / "seeds" / "gateway.yaml").exists():
        pytest.skip("seeds/gateway.yaml not in this tree yet")
    proc = subprocess.run(
        ["sh", str(INSTALL), "--dry-run"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "seeds/gateway.yaml /etc/edge-agent/gateway.yaml\n" not in out  # never the live one
    for step in (
        "-m venv /opt/edge-agent/venv",
        "pip install --quiet --upgrade",
        "ln -sfn /opt/edge-agent/venv/bin/edge-agent /usr/local/bin/edge-agent",
        "NUMBA_CACHE_DIR=/var/cache/edge-agent/numba",  # the cache warmed at install
        "/etc/edge-agent/gateway.yaml.example (state_dir: /var/lib/edge-agent)",
        "/etc/edge-agent/site.yaml.example",
        "/etc/systemd/system/edge-agent.service",
        "systemctl daemon-reload",
        "systemctl enable edge-agent.service",
    ):
        assert step in out, f"missing step {step!r} in:\n{out}"
    # The site file gateway.yaml.example names, where there is none yet (never overwritten).
    made_site = "seeds/site.yaml /etc/edge-agent/site.yaml\n" in out
    assert made_site != Path("/etc/edge-agent/site.yaml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option --bogus"),
        (["--wheelhouse"], "needs a directory"),
        (["--root", "/nonexistent/dir"], "--root /nonexistent/dir: not a directory"),
    ],
)
def test_install_script_bad_arguments_exit_2(args, message):
    proc = subprocess.run(["sh", str(INSTALL), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr


def _bytes(value: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_memory_limits_are_in_step_with_the_worker_and_the_measured_peak():
    """MemoryHigh over the measured peak (docs/benchmarks.md: the daemon and its worker
    together stay within 200 MB while a night is analysed), MemoryMax over MemoryHigh and
    over what the daemon and a worker at its own default limit can hold together, so the
    worker's MemoryError comes before the kernel's OOM killer."""
    from edge_agent.config.model import DEFAULT_WORKER_MEMORY_MB

    settings = _settings()
    high, limit = _bytes(settings["MemoryHigh"][0]), _bytes(settings["MemoryMax"][0])
    peak_ceiling, resident_ceiling = 200 << 20, 60 << 20
    assert peak_ceiling < high < limit
    assert limit >= resident_ceiling + int(DEFAULT_WORKER_MEMORY_MB) * (1 << 20)
