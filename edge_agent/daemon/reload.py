"""What a config reload (SIGHUP) changes, device by device, and so what the new runtime may
carry over from the old one.

A device is *the same* when it is polled as before and sits where it sat: the same bus
settings, unit id, effective profile (overrides applied), poll interval, timeout and retries,
pipe segment and site placement (kind, pipe, material). Its name, rules, asset id and
coordinates are not part of that: changing a threshold does not make another sensor of it.

- the same device keeps everything: its bus coordinator (availability, failure streak,
  schedule, counters), its rules' evidence (K-of-N windows, on-delays, rate windows) where
  the rule's own settings did not change, its telemetry deadband state, its leak tracker;
- a changed device starts fresh, but from what consumers were told of it (its availability,
  which of its alarms are raised), so its next event is the one they expect: never a second
  ``device.offline`` (or ``level.high``) without the ``device.online`` (``level.normal``)
  between;
- an added device starts fresh; a removed one is named in ``removed`` (``Daemon.last_reload``
  and the ``config reloaded`` log line; the integrations clear what the broker retains of it
  from the new catalog on their own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from drivers.profile import Profile
from edge_agent.config.model import GatewayConfig
from sitemodel import Site

__all__ = ["DeviceChanges", "device_identities"]

# What a device's identity is made of (see the module docstring): compared with ==.
Identity = tuple[object, ...]


def device_identities(
    config: GatewayConfig, profiles: Mapping[str, Profile], site: Site | None
) -> dict[str, Identity]:
    """Device name -> what makes it the same device across a reload. ``profiles``: each
    device's effective profile (``BusSetup.profiles``)."""
    buses = {bus.name: bus for bus in config.buses}
    out: dict[str, Identity] = {}
    for d in config.devices:
        placed: tuple[str, str | None, str | None] | None = None
        if site is not None:
            with contextlib.suppress(KeyError):
                where = site.device(d.name)
                material = None
                if where.pipe is not None:
                    with contextlib.suppress(KeyError):
                        material = site.pipe(where.pipe).material
                placed = (where.kind, where.pipe, material)
        out[d.name] = (
            buses.get(d.bus),
            d.unit_id,
            profiles.get(d.name),
            d.poll_interval_s,
            d.timeout_s,
            d.retries,
            d.pipe_segment,
            placed,
        )
    return out


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    """Device names by what a reload does to them (see the module docstring)."""

    same: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    @classmethod
    def between(cls, old: Mapping[str, Identity], new: Mapping[str, Identity]) -> DeviceChanges:
        both = old.keys() & new.keys()
        return cls(
            same=frozenset(n for n in both if old[n] == new[n]),
            changed=frozenset(n for n in both if old[n] != new[n]),
            added=frozenset(new.keys() - old.keys()),
            removed=frozenset(old.keys() - new.keys()),
        )

    def summary(self) -> dict[str, list[str]]:
        """For the log line: the changed, added and removed names (sorted), where any."""
        groups = (("changed", self.changed), ("added", self.added), ("removed", self.removed))
        return {name: sorted(group) for name, group in groups if group}
