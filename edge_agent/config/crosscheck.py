"""Cross checks over the whole config, after each section was converted on its own.

Unique bus and device names, every device's bus exists, a unit id once per bus, one serial port
per bus, devices named by rules exist, profiles exist and point overrides fit them, the uplink
URL and TLS rule, and files that must exist. Sections with a bad field arrive as partial
records: a check runs when the values it needs could be read, so one run lists everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from drivers.errors import ProfileError
from edge_agent.config.broker_url import BrokerUrlError, parse_broker_url
from edge_agent.errors import UsageError
from yamlread import INVALID, Converter, readable
from yamlread.problems import join_path, printable, show_value, suggest

__all__ = ["ProfileSource", "cross_checks", "registry_profiles"]

# Given the resolved profiles_dir (or None), the known device profiles by name.
ProfileSource = Callable[[str | None], Mapping[str, Any]]


def registry_profiles(profiles_dir: str | None) -> dict[str, Any]:
    """The ``ProfileSource`` the daemon and the commands use: the shipped profiles, overridden
    by name by those in ``profiles_dir``. Raises ``ProfileError`` for a bad profile file."""
    from drivers.profile import ProfileRegistry  # parses every profile file: only when asked

    return {p.name: p for p in ProfileRegistry(user_dir=profiles_dir).all()}


def _good(items: Any) -> list[tuple[int, Any]]:
    if not isinstance(items, tuple | list):
        return []
    return [(i, v) for i, v in enumerate(items) if v is not INVALID]


def _all_named(items: Any) -> bool:
    """Every item and its name could be read (else a name may be missing from the lookups)."""
    return isinstance(items, tuple | list) and all(
        readable(item) and readable(item.name) for item in items
    )


def _unique_names(
    conv: Converter, section: str, what: str, items: list[tuple[int, Any]]
) -> dict[str, int]:
    """Name -> index of its first use in ``section``; every later use is a problem."""
    seen: dict[str, int] = {}
    for i, item in items:
        if not readable(item.name):
            continue
        if item.name in seen:
            conv.problem_at(
                f"{section}[{i}].name",
                f"duplicate {what} name {item.name!r} (also {section}[{seen[item.name]}])",
            )
        else:
            seen[item.name] = i
    return seen


def cross_checks(
    conv: Converter,
    values: dict[str, Any],
    profile_exists: Callable[[str], bool] | None,
    profile_names: Collection[str] | None,
    profiles: ProfileSource | None,
) -> None:
    """Record, through ``conv``, every problem of the file as a whole. ``values`` are the
    converted top-level fields (some may be invalid or partial); profiles are known from
    ``profiles`` (preferred: also checks point overrides), ``profile_names`` or
    ``profile_exists``, or not checked at all."""
    known_profiles: Mapping[str, Any] | None = None
    profiles_dir = values.get("profiles_dir")
    unusable_dir = profiles_dir is INVALID or (
        profiles_dir is not None and not os.path.isdir(profiles_dir)
    )
    if profiles is not None and unusable_dir:
        # Its own problem is reported below; guessing at profiles without it would only add
        # "unknown profile" lines for every device using one of its profiles.
        profiles = profile_exists = profile_names = None
    if profiles is not None:
        try:
            known_profiles = profiles(values.get("profiles_dir"))
        except (ProfileError, UsageError) as exc:  # every problem of every bad profile file
            for line in str(exc).splitlines() or [""]:
                conv.problem_at("profiles_dir", printable(line))
        else:
            profile_names = list(known_profiles)
            profile_exists = known_profiles.__contains__
    buses = _good(values.get("buses", ()))
    devices = _good(values.get("devices", ()))

    seen_bus = _unique_names(conv, "buses", "bus", buses)
    serial_ports: dict[str, str] = {}
    for i, bus in buses:
        if not readable(bus.name):
            continue
        if bus.type == "rtu" and readable(bus.port):
            if bus.port in serial_ports:
                conv.problem_at(
                    f"buses[{i}].port",
                    f"{show_value(bus.port)} is already used by bus {serial_ports[bus.port]!r} "
                    "(a serial port belongs to one bus)",
                )
            else:
                serial_ports[bus.port] = bus.name

    # A device's bus is only "unknown" when every bus name could be read.
    all_bus_names = _all_named(values.get("buses", ()))
    exists = profile_exists
    if exists is None and profile_names is not None:
        exists = profile_names.__contains__
    seen_dev = _unique_names(conv, "devices", "device", devices)
    units: dict[tuple[str, int], int] = {}
    for i, dev in devices:
        if readable(dev.bus) and all_bus_names and dev.bus not in seen_bus:
            conv.problem_at(
                f"devices[{i}].bus",
                f"no bus named {show_value(dev.bus)}{suggest(dev.bus, seen_bus)}",
            )
        if readable(dev.bus) and readable(dev.unit_id):
            key = (dev.bus, dev.unit_id)
            if key in units:
                j = units[key]
                conv.problem_at(
                    f"devices[{i}].unit_id",
                    f"unit {dev.unit_id} is already used on bus {dev.bus!r} by devices[{j}]",
                )
            else:
                units[key] = i
        if not readable(dev.profile) or exists is None:
            continue
        if not exists(dev.profile):
            hint = suggest(dev.profile, profile_names) if profile_names else ""
            if "did you mean" not in hint:
                hint = ""
            conv.problem_at(
                f"devices[{i}].profile", f"unknown profile {show_value(dev.profile)}{hint}"
            )
        elif known_profiles is not None:
            _check_overrides(conv, i, dev, known_profiles[dev.profile])

    all_device_names = _all_named(values.get("devices", ()))
    for i, dev in devices:
        if not (readable(dev.rules) and all_device_names):
            continue
        for ref in ("rain_gauge", "wet_well"):
            target = getattr(dev.rules, ref, None)
            if readable(target) and target is not None and target not in seen_dev:
                conv.problem_at(
                    f"devices[{i}].rules.{ref}",
                    f"no device named {show_value(target)}{suggest(target, seen_dev)}",
                )

    for field_name, what in (("site_file", os.path.isfile), ("profiles_dir", os.path.isdir)):
        named = values.get(field_name)
        if isinstance(named, str) and not what(named):
            kind = "file" if field_name == "site_file" else "directory"
            conv.problem_at(field_name, f"no such {kind}: {printable(named)}")

    uplink = values.get("uplink")
    if uplink is not None and readable(uplink):
        _check_uplink(conv, uplink)


def _dict_at(section: Any, name: str) -> dict[str, Any]:
    """``section.name`` when both could be read, else ``{}`` (their problems are reported)."""
    if not readable(section):
        return {}
    value = getattr(section, name, None)
    return value if isinstance(value, dict) else {}


def _check_overrides(conv: Converter, i: int, dev: Any, profile: Any) -> None:
    """Point overrides and per-point rules must name points the profile has; overrides must
    fit the point's type."""
    points = getattr(profile, "points", None)
    names = [p.name for p in points] if points is not None else None

    def unknown(path: str, point_name: str) -> bool:
        """Report ``point_name`` when the profile has no such point."""
        if names is None or point_name in names:
            return False
        message = f"profile {dev.profile!r} has no point {show_value(point_name)}"
        conv.problem_at(path, message + suggest(point_name, names))
        return True

    for point_name in _dict_at(dev.rules, "points"):
        unknown(join_path(f"devices[{i}].rules.points", point_name), point_name)
    for point_name, override in _dict_at(dev.overrides, "points").items():
        path = join_path(f"devices[{i}].overrides.points", point_name)
        if unknown(path, point_name):
            continue
        with_overrides = getattr(profile, "with_overrides", None)
        if with_overrides is None:
            continue
        try:
            with_overrides({point_name: override})
        except ProfileError as exc:
            message = (str(exc).removeprefix("override ").splitlines() or ["invalid"])[0]
            conv.problem_at(path, printable(message))


def _check_uplink(conv: Converter, uplink: Any) -> None:
    tls = uplink.tls
    insecure = tls.insecure_plaintext if readable(tls) else INVALID
    if uplink.url is not None and readable(uplink.url) and readable(insecure):
        # The rule run applies to the same URL (and to --mqtt): one rule, one answer.
        try:
            broker = parse_broker_url(uplink.url, allow_plaintext=insecure)
        except BrokerUrlError as exc:
            conv.problem_at("uplink.url", exc.reason)
        else:
            if broker.tls and insecure:
                message = "contradicts the mqtts:// url (TLS is on)"
                conv.problem_at("uplink.tls.insecure_plaintext", message)
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, key) if readable(tls) else None
        if isinstance(path, str) and not os.path.isfile(path):
            conv.problem_at(f"uplink.tls.{key}", f"no such file: {printable(path)}")
    if isinstance(uplink.password_file, str) and not os.path.isfile(uplink.password_file):
        conv.problem_at("uplink.password_file", "no such file")
