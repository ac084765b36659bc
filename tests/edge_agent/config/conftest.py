"""Paths to the config fixtures and a loader wired to the real profile registry."""

from pathlib import Path

import pytest

from edge_agent.config.loader import registry_profiles

FIXTURES = Path(__file__).parent / "fixtures"
FULL = FIXTURES / "gateway-full.yaml"
MINIMAL = FIXTURES / "gateway-minimal.yaml"
SEED = Path(__file__).resolve().parents[3] / "seeds" / "gateway.yaml"
VALID_FILES = [FULL, MINIMAL]


# The profiles check-config and the daemon see: shipped plus the config's profiles_dir.
real_profiles = registry_profiles


@pytest.fixture
def seed_config_path():
    if not SEED.exists():
        pytest.skip("seeds/gateway.yaml is not written yet")
    return SEED
