"""Device profiles: the shipped YAML files, the loader's errors, the registry, overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.errors import ProfileError
from drivers.profile import (
    KINDS,
    SHIPPED_DIR,
    PointOverride,
    ProfileRegistry,
    load_profile,
    parse_profile,
)

MINIMAL = """\
name: test-model
vendor: Acme
model: T1
kind: level
identification:
  - {name: vendor_id, function: holding, address: 9000, type: u16, equals: 7}
points:
  - name: level
    function: input
    address: 0
    type: u16
    unit: mm
    range: [0, 5000]
    fault: {point: status}
    role: level_mm
  - name: status
    function: input
    address: 1
    type: bitfield
    fault_bits: {0: echo_lost, 1: over_range}
    status_bits: {4: battery_low}
"""


class TestShippedProfiles:
    """Every shipped model loads and is distinct enough for a scan to tell them apart."""

    def test_every_kind_has_a_profile(self):
        """The seven kinds of the issue each have at least one shipped model."""
        kinds = {p.kind for p in ProfileRegistry().all()}
        assert kinds == set(KINDS)

    def test_names_match_file_names(self):
        """A profile's name is its file name, so users find the file by the name."""
        for path in SHIPPED_DIR.glob("*.yaml"):
            assert load_profile(path).name == path.stem

    def test_identification_is_distinct(self):
        """No two models answer the same identification values at the same addresses."""
        signatures = set()
        for profile in ProfileRegistry().all():
            assert profile.identification, profile.name
            signature = tuple(
                (c.point.function, c.point.address, c.expected) for c in profile.identification
            )
            assert signature not in signatures
            signatures.add(signature)

    def test_roles_rules_rely_on(self):
        """Rules find their inputs by role; these roles must exist in the shipped maps."""
        registry = ProfileRegistry()
        expected = {
            "noise-logger-nl200": {"leak_level_db", "leak_spread_db", "leak_peak_hz"},
            "level-radar-lr10": {"level_mm", "battery_pct"},
            "gas-detector-mg4": {"gas_lel", "gas_h2s_ppm", "gas_co_ppm", "gas_o2_pct"},
            "rain-gauge-tb2": {"rain_mm_total", "rain_rate_mm_h"},
            "pressure-pt5": {"pressure_bar"},
            "pump-controller-ps2": {"pump_running", "pump_fault", "pump_run_hours", "level_mm"},
            "cover-sensor-mc1": {"cover_open", "cover_tilt_deg", "battery_pct"},
        }
        for name, roles in expected.items():
            have = {p.role for p in registry.get(name).points}
            assert roles <= have, (name, roles - have)

    def test_noise_logger_recording_block_matches_the_protocol(self):
        """The NL200's recording block is the register table of docs/architecture.md."""
        rec = ProfileRegistry().get("noise-logger-nl200").recording
        assert rec is not None
        assert (rec.control, rec.duration_s, rec.sample_rate, rec.status) == (100, 101, 102, 103)
        assert (rec.sample_count, rec.scale, rec.crc32, rec.block_index) == (104, 106, 108, 110)
        assert (rec.block, rec.block_size, rec.word_order) == (200, 120, "big")

    def test_architecture_table_lists_the_same_addresses(self):
        """The docs table and the shipped profile do not drift apart."""
        doc = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
        rows = dict(re.findall(r"^\| (\d+)(?:-\d+)? \| `(rec_\w+)`", doc, re.MULTILINE))
        rec = ProfileRegistry().get("noise-logger-nl200").recording
        by_name = {
            "rec_control": rec.control,
            "rec_duration_s": rec.duration_s,
            "rec_sample_rate": rec.sample_rate,
            "rec_status": rec.status,
            "rec_sample_count": rec.sample_count,
            "rec_scale": rec.scale,
            "rec_crc32": rec.crc32,
            "rec_block_index": rec.block_index,
            "rec_block": rec.block,
        }
        assert {v: int(k) for k, v in rows.items()} == by_name

    def test_planned_reads_cover_only_defined_registers(self):
        """Shipped maps are dense where the planner merges, so a strict device (one that
        refuses every register it does not define, like the simulators) answers every read."""
        from drivers.planner import plan_profile

        for profile in ProfileRegistry().all():
            for request in plan_profile(profile).requests:
                used = {a for p in request.points for a in range(p.address, p.end + 1)}
                assert used == set(range(request.address, request.end + 1)), (
                    profile.name,
                    request,
                )

    def test_some_profile_marks_unreadable_ranges(self):
        """The planner's unreadable rule is exercised by real maps."""
        assert any(p.unreadable for p in ProfileRegistry().all())

    def test_fault_bits_resolve_to_all_fault_bits_when_unnamed(self):
        """``fault: {point: status}`` means every fault bit of ``status``."""
        profile = parse_profile(MINIMAL)
        assert profile.point("level").fault_on == ("echo_lost", "over_range")


# (replace this, with that) in MINIMAL -> (line:col, message fragment)
BAD_CASES = [
    ("type: u16\n    unit", "type: f33\n    unit", "11:11", "points[0].type: 'f33' is not one of"),
    ("kind: level", "kind: lamp", "4:7", "kind: 'lamp' is not one of"),
    (
        "    role: level_mm",
        "    rolez: level_mm",
        "15:5",
        "rolez: unknown key (did you mean 'role'?)",
    ),
    ("address: 1", "address: 0", "16:5", "overlaps 'level'"),
    ("range: [0, 5000]", "range: [5000, 0]", "13:12", "low 5000.0 is not below high 0.0"),
    ("fault: {point: status}", "fault: {point: nope}", "14:20", "fault.point: 'nope' is not a"),
    ("fault: {point: status}", "fault: {point: status, bits: [x]}", "14:34", "has no bit 'x'"),
    ("function: input\n    address: 0", "function: coil\n    address: 0", "11:11", "type bool"),
    ("address: 0\n", "address: 70000\n", "10:14", "70000 is not in 0..65535"),
    ("{0: echo_lost,", "{16: echo_lost,", "20:18", "16 is not in 0..15"),
    ("name: test-model", "name: Test Model", "1:7", "'Test Model' is not allowed: use lower-case"),
    ("vendor: Acme\n", "", "1:1", "missing required key 'vendor'"),
    ("equals: 7}", "equals: 70000}", "6:76", "70000 is not in 0..65535"),
    ("    unit: mm\n", "    unit: mm\n    count: 2\n", "13:12", "count is only for string"),
    ("role: level_mm", "role: level_mm\n    writable: 1", "16:15", "expected true or false"),
    (
        "role: level_mm",
        "role: level_mm\n    deadband: -2",
        "16:15",
        "-2 is less than the minimum 0",
    ),
    (
        "    status_bits:",
        "    deadband: 1\n    status_bits:",
        "21:15",
        "numeric points, not bitfield",
    ),
]


class TestLoaderErrors:
    """A bad profile names file, line, column and the field; nothing is guessed."""

    @pytest.mark.parametrize(("old", "new", "where", "fragment"), BAD_CASES)
    def test_bad_profile(self, old, new, where, fragment):
        """Each mistake is reported at its place with a clear message."""
        assert old in MINIMAL
        with pytest.raises(ProfileError) as info:
            parse_profile(MINIMAL.replace(old, new, 1), "t.yaml")
        message = str(info.value)
        assert fragment in message
        assert message.startswith(f"t.yaml:{where}: ")
        assert "\n" not in message

    def test_position_of_the_bad_type(self):
        """The documented example: file:line:col, then the field path."""
        with pytest.raises(ProfileError, match=r"^t\.yaml:11:11: points\[0\]\.type: 'f33'"):
            parse_profile(MINIMAL.replace("type: u16\n    unit", "type: f33\n    unit"), "t.yaml")

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("", "empty profile"),
            ("name: [unclosed", "YAML syntax"),
            ("- a list", "expected a mapping"),
            ("name: a\nname: b\n", r"name: duplicate key \(first at line 1\)"),
        ],
    )
    def test_not_a_profile(self, text, fragment):
        """Empty, broken or wrongly shaped YAML gives one line, not a traceback."""
        with pytest.raises(ProfileError, match=fragment):
            parse_profile(text, "t.yaml")

    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("vendor: Acme", "vendor: !foo Acme", "2:9: vendor: cannot read this value: .*'!foo'"),
            ("vendor: Acme", "vendor: !!python/name:os.system x", "2:9: vendor: cannot read"),
            ("scale: 1", "scale: !!binary 0.1", r"13:12: points\[0\]\.scale: .*base64"),
            ("address: 0\n", "address: !!int abc\n", "10:14: .*: it is not a valid !!int$"),
        ],
    )
    def test_explicit_tag_that_cannot_be_read(self, old, new, message):
        """An unknown tag or badly tagged data is a located ProfileError, not a YAML traceback."""
        text = MINIMAL.replace("    unit: mm\n", "    unit: mm\n    scale: 1\n", 1)
        assert old in text
        with pytest.raises(ProfileError, match=rf"^t\.yaml:{message}"):
            parse_profile(text.replace(old, new, 1), "t.yaml")

    @pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "9" * 400])
    def test_a_number_must_be_finite(self, value):
        """A NaN or infinite scale would turn every reading into NaN or inf."""
        text = MINIMAL.replace("    unit: mm\n", f"    unit: mm\n    scale: {value}\n", 1)
        where = r"^t\.yaml:13:12: points\[0\]\.scale: "
        with pytest.raises(ProfileError, match=where + ".*(not a finite|too large for a) number"):
            parse_profile(text, "t.yaml")

    def test_point_in_unreadable_range(self):
        """A point inside a range the device refuses is a contradiction."""
        text = MINIMAL + "unreadable:\n  - {function: input, start: 1, end: 5}\n"
        with pytest.raises(ProfileError, match=r"lies in the unreadable range input 1\.\.5"):
            parse_profile(text, "t.yaml")

    def test_every_problem_of_a_file_at_once(self):
        """Two mistakes are two lines in file order, not one fix-and-retry round each."""
        text = MINIMAL.replace("kind: level", "kind: lamp")
        text = text.replace("type: u16\n    unit", "type: f33\n    unit")
        with pytest.raises(ProfileError) as info:
            parse_profile(text, "t.yaml")
        lines = str(info.value).splitlines()
        assert [line.split(": ")[0] for line in lines] == ["t.yaml:4:7", "t.yaml:11:11"]
        assert len(info.value.problems) == 2

    def test_a_points_word_order_is_the_profiles_unless_it_says(self):
        """``word_order`` / ``byte_order`` at the top are every point's and register's default."""
        text = MINIMAL.replace("kind: level\n", "kind: level\nword_order: little\n")
        text = text.replace("    type: bitfield\n", "    type: bitfield\n    word_order: big\n")
        profile = parse_profile(text)
        assert profile.point("level").word_order == "little"
        assert profile.point("status").word_order == "big"
        assert profile.identification[0].point.word_order == "little"
        assert parse_profile(MINIMAL).point("level").word_order == "big"

    def test_unreadable_file(self, tmp_path):
        """A missing file is a ProfileError naming the path."""
        with pytest.raises(ProfileError, match="cannot read profile"):
            load_profile(tmp_path / "absent.yaml")


class TestRegistry:
    """Shipped profiles plus a user directory that overrides them by name."""

    def test_unknown_profile_lists_known_ones(self):
        """The error tells the installer what is available."""
        with pytest.raises(ProfileError, match=r"unknown profile 'x' \(known: cover-sensor-mc1"):
            ProfileRegistry().get("x")

    def test_user_profile_overrides_shipped(self, tmp_path):
        """A user file with a shipped name replaces the shipped model; new names add."""
        shipped = (SHIPPED_DIR / "pressure-pt5.yaml").read_text()
        (tmp_path / "mine.yaml").write_text(shipped.replace("model: PT5", "model: PT5-custom"))
        (tmp_path / "new.yaml").write_text(MINIMAL)
        registry = ProfileRegistry(tmp_path)
        assert registry.get("pressure-pt5").model == "PT5-custom"
        assert registry.exists("test-model")
        assert "test-model" in registry.names()
        assert len(registry.all()) == len(ProfileRegistry().all()) + 1

    def test_duplicate_name_in_one_directory(self, tmp_path):
        """Two user files claiming one name is an error, not a coin toss."""
        (tmp_path / "a.yaml").write_text(MINIMAL)
        (tmp_path / "b.yaml").write_text(MINIMAL)
        with pytest.raises(ProfileError, match="also used by"):
            ProfileRegistry(tmp_path)

    def test_bad_user_file_names_its_place(self, tmp_path):
        """A broken user profile fails the registry with file:line:col."""
        (tmp_path / "bad.yaml").write_text(MINIMAL.replace("kind: level", "kind: lamp"))
        with pytest.raises(ProfileError, match=r"bad\.yaml:4:7: kind"):
            ProfileRegistry(tmp_path)

    def test_every_bad_file_is_reported(self, tmp_path):
        """Two broken user profiles: both files' problems, one line each."""
        (tmp_path / "a.yaml").write_text(MINIMAL.replace("kind: level", "kind: lamp"))
        (tmp_path / "b.yaml").write_text(MINIMAL.replace("address: 0\n", "address: -1\n"))
        with pytest.raises(ProfileError) as info:
            ProfileRegistry(tmp_path)
        lines = str(info.value).splitlines()
        assert len(lines) == 2
        assert "a.yaml:4:7: kind" in lines[0] and "b.yaml:10:14: points[0].address" in lines[1]

    def test_missing_user_dir(self, tmp_path):
        """A configured directory that is not there is reported."""
        with pytest.raises(ProfileError, match="does not exist"):
            ProfileRegistry(tmp_path / "nope")


class TestOverrides:
    """Config ``overrides.points`` adjust scale, offset, range, unit and enabled."""

    def test_mapping_and_dataclass_overrides(self):
        """Both forms apply; points not named are unchanged."""
        profile = parse_profile(MINIMAL)
        changed = profile.with_overrides({"level": {"scale": 0.1, "range": [0, 500], "unit": "cm"}})
        level = changed.point("level")
        assert (level.scale, level.valid_range, level.unit) == (0.1, (0.0, 500.0), "cm")
        assert changed.point("status") == profile.point("status")
        assert profile.with_overrides({"level": {"deadband": 5}}).point("level").deadband == 5
        off = profile.with_overrides({"level": PointOverride(enabled=False)})
        assert [p.name for p in off.enabled_points] == ["status"]

    @pytest.mark.parametrize(
        ("overrides", "fragment"),
        [
            ({"nope": {"scale": 2}}, "has no point 'nope'"),
            ({"level": {"range": [5, 1]}}, "is not below"),
            ({"level": {"scale": 0}}, "must not be 0"),
            ({"level": {"gain": 2}}, "unknown key"),
            ({"status": {"scale": 2}}, "do not apply to a bitfield"),
            ({"level": {"deadband": -1}}, "must not be negative"),
        ],
    )
    def test_bad_overrides(self, overrides, fragment):
        """A wrong override is refused with a message naming the point."""
        with pytest.raises(ProfileError, match=fragment):
            parse_profile(MINIMAL).with_overrides(overrides)
