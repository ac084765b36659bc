"""The offline installer bundle (``make bundle``, docs/installers.md).

- The bundle for this machine and the running Python is built, unpacked in a clean directory
  and installed there (``install.sh --root``) inside a network namespace with no network: the
  wheels it carries are all the install needs. The installed ``edge-agent`` then checks the
  installed example config as it is and copied to ``gateway.yaml`` (the issue's broken case).
- The aarch64 bundle (Raspberry Pi 4/5, CM4) resolves every dependency to a binary wheel for
  CPython 3.11, 3.12 and 3.13, checked by resolution only (wheel metadata, no full download).

Building needs the package index the first time; pip's cache (.cache/pip) serves later runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sitemodel import load_site

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "scripts" / "build-bundle.sh"
ARCH = platform.machine()
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
# The runtime dependencies that carry compiled code: each must come as a binary wheel.
COMPILED = ("numpy", "numba", "llvmlite", "rocket_fft", "cbor2", "pyyaml", "rpds_py")


def _no_network() -> list[str]:
    """A command prefix running in a new network namespace (as root; else a user namespace)."""
    prefix = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"]).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare)")
    return prefix


def _wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return re.sub(r"[-_.]+", "-", name).lower(), version


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    target = [f"BUNDLE_ARCH={ARCH}", f"BUNDLE_PYTHON={PYTHON}", f"BUNDLE_OUT={out}"]
    proc = subprocess.run(
        ["make", "-s", "bundle", *target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (tarball,) = out.glob("*.tar.gz")
    assert tarball.name == f"edge-agent-0.1.0-linux-{ARCH}-cp{PYTHON.replace('.', '')}.tar.gz"
    return tarball


def _unpack(tarball: Path, where: Path) -> Path:
    where.mkdir()
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(where)], check=True)
    (top,) = where.iterdir()
    return top


def test_installs_with_no_network_and_the_example_config_loads(bundle, tmp_path):
    top = _unpack(bundle, tmp_path / "unpacked")
    assert {p.name for p in top.iterdir()} >= {
        "install.sh",
        "BUNDLE",
        "SHA256SUMS",
        "wheels",
        "systemd",
        "seeds",
    }
    wheels = sorted(p.name for p in (top / "wheels").iterdir())
    assert all(w.endswith(".whl") for w in wheels), wheels  # no sdist to build at the kerb

    root = tmp_path / "root"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    proc = subprocess.run(
        [*_no_network(), "sh", str(top / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "systemd is not running" in proc.stdout and "enabled for the next boot" in proc.stdout

    venv = root / "opt" / "edge-agent" / "venv"
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "PIP_CONFIG_FILE": os.devnull},
    )
    installed = {
        (re.sub(r"[-_.]+", "-", d["name"]).lower(), d["version"])
        for d in json.loads(listed.stdout)
        if d["name"] not in ("pip", "setuptools")
    }
    assert installed == {_wheel_name_version(w) for w in wheels}  # every one from the bundle

    unit = root / "etc" / "systemd" / "system" / "edge-agent.service"
    enabled = unit.parent / "multi-user.target.wants" / "edge-agent.service"
    assert unit.read_text() == (ROOT / "systemd" / "edge-agent.service").read_text()
    assert os.readlink(enabled) == "/etc/systemd/system/edge-agent.service"
    assert os.readlink(root / "usr" / "local" / "bin" / "edge-agent") == (
        "/opt/edge-agent/venv/bin/edge-agent"
    )
    cache = root / "var" / "cache" / "edge-agent" / "numba"
    assert list(cache.rglob("*.nbi")), "the numba cache was not warmed"

    conf = root / "etc" / "edge-agent"
    assert "  state_dir: /var/lib/edge-agent\n" in (conf / "gateway.yaml.example").read_text()
    shutil.copy(conf / "gateway.yaml.example", conf / "gateway.yaml")
    for config in ("gateway.yaml.example", "gateway.yaml"):
        check = subprocess.run(
            [str(venv / "bin" / "edge-agent"), "check-config", str(conf / config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        devices = len(load_site(ROOT / "seeds" / "site.yaml").devices)
        assert check.stdout.strip() == f"{conf / config}: ok (4 buses, {devices} devices)"


def test_refuses_a_machine_it_was_not_built_for(bundle, tmp_path):
    """Wheels are per CPython version and CPU: a mismatch is one line, exit 2, nothing done."""
    top = _unpack(bundle, tmp_path / "unpacked")
    info = top / "BUNDLE"
    info.write_text(info.read_text().replace(f"python={PYTHON}", "python=3.99"))
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.run(
        ["sh", str(top / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"install.sh: this bundle is for CPython 3.99 on {ARCH};")
    assert len(proc.stderr.strip().splitlines()) == 1 and list(root.iterdir()) == []


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_aarch64_resolves_every_dependency_to_a_binary_wheel(python):
    proc = subprocess.run(
        ["sh", str(BUILD), "--arch", "aarch64", "--python", python, "--resolve-only"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("build-bundle: every dependency resolves to a binary wheel")
    wheels = lines[:-1]
    cp = f"cp{python.replace('.', '')}"
    for wheel in wheels:
        assert wheel.endswith(".whl"), wheel
        if not wheel.endswith("-any.whl"):
            assert "_aarch64" in wheel and (f"-{cp}-" in wheel or "-abi3-" in wheel), wheel
    names = {_wheel_name_version(w)[0] for w in wheels}
    assert {n.replace("_", "-") for n in COMPILED} <= names
    assert {"edge-agent", "pymodbus", "paho-mqtt", "structlog", "jsonschema"} <= names
