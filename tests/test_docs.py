"""The docs stay true to the tree: docs/architecture.md's module map names every module (and
nothing that does not exist), its config and site examples load, and README.md's docs index
lists every page under docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.profile import ProfileRegistry
from edge_agent.config.loader import load_config
from sitemodel import load_site

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = ("edge_agent", "drivers", "sitemodel", "yamlread", "dsp")


def _map_section(package: str) -> str:
    start = ARCHITECTURE.index(f"### `{package}/`")
    end = ARCHITECTURE.find("\n#", start + 1)
    return ARCHITECTURE[start:end]


def _modules(package: str) -> list[str]:
    base = ROOT / package
    return sorted(
        str(p.relative_to(base))
        for p in base.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_module_map_names_every_module(package: str) -> None:
    section = _map_section(package)
    named = set(re.findall(r"`([\w/]+\.py)`", section))
    commands = re.search(r"`commands/<name>\.py` \|[^|]*\|", section)
    missing = []
    for module in _modules(package):
        if module.startswith("commands/") and commands is not None:
            if f"`{Path(module).stem}`" not in commands.group(0):
                missing.append(module)
        elif module not in named:
            missing.append(module)
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_module_map_names_nothing_that_does_not_exist(package: str) -> None:
    named = re.findall(r"`([\w/]+\.py)`", _map_section(package))
    assert [m for m in named if not (ROOT / package / m).is_file()] == []


def test_architecture_examples_load(tmp_path: Path) -> None:
    config_text, site_text = re.findall(r"```yaml\n(.*?)```", ARCHITECTURE, re.S)[:2]
    (tmp_path / "gateway.yaml").write_text(config_text)
    (tmp_path / "site.yaml").write_text(site_text)
    (tmp_path / "profiles").mkdir()
    registry = ProfileRegistry()
    cfg = load_config(
        tmp_path / "gateway.yaml", profiles=lambda _d: {p.name: p for p in registry.all()}
    )
    assert cfg.site_file == str(tmp_path / "site.yaml")
    site = load_site(tmp_path / "site.yaml")
    assert {d.kind for d in site.devices} >= {"noise_logger", "level", "gas", "cover"}


def test_readme_indexes_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"docs/{p}" not in readme] == []
