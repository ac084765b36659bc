"""Shared bits of the site-simulator tests: the seed site, decoding a model's store, GCC-PHAT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drivers.codec import decode_registers
from drivers.profile import Point, ProfileRegistry
from drivers.sim.devices import DeviceModel
from sitemodel import Site, load_site

REPO = Path(__file__).resolve().parents[3]
SEED_SITE = REPO / "seeds" / "site.yaml"
SEED_GATEWAY = REPO / "seeds" / "gateway.yaml"
PROFILES = ProfileRegistry()
_TABLE = {"coil": "coils", "discrete": "discrete", "input": "input", "holding": "holding"}


def seed_site() -> Site:
    return load_site(SEED_SITE, profiles=PROFILES)


def read_point(model: DeviceModel, name: str):
    """A point's value decoded from the model's register store, as a master would see it."""
    return decode_from_store(model, model.profile.point(name))


def decode_from_store(model: DeviceModel, point: Point):
    table = model.store.table(_TABLE[point.function])
    return decode_registers(point, [table[a] for a in range(point.address, point.end + 1)])


def gcc_phat_lag(a: np.ndarray, b: np.ndarray) -> int:
    """Lag in samples by which ``a`` trails ``b`` (t_a - t_b), by plain numpy GCC-PHAT."""
    n = len(a) + len(b)
    cross = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    cc = np.fft.irfft(cross / (np.abs(cross) + 1e-12), n)
    half = len(a)
    cc = np.concatenate([cc[-half:], cc[: half + 1]])
    return int(np.argmax(cc)) - half
