"""Paths to the config fixtures and a loader wired to the real profile registry."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FULL = FIXTURES / "gateway-full.yaml"
MINIMAL = FIXTURES / "gateway-minimal.yaml"
SEED = Path(__file__).resolve().parents[3] / "seeds" / "gateway.yaml"
VALID_FILES = [FULL, MINIMAL]


def real_profiles(profiles_dir):
    """The profiles check-config sees: shipped plus the config's profiles_dir."""
    from drivers.profile import ProfileRegistry

    return {p.name: p for p in ProfileRegistry(user_dir=profiles_dir).all()}


@pytest.fixture
def seed_config_path():
    if not SEED.exists():
        pytest.skip("seeds/gateway.yaml is not written yet")
    return SEED
