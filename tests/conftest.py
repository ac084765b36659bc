"""Shared test settings. Area fixtures live in tests/<area>/conftest.py; reusable helpers
that start real peers (mosquitto, socat, simulators) live in tests/helpers/."""

import os

from hypothesis import HealthCheck, settings

# CI has 2 cores: keep property tests meaningful but bounded.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
