"""Every kind of config problem, table-driven: the YAML and the exact lines check-config prints.

Each case is a whole small document so its line and column numbers are what a person sees.
Profiles are checked against a fixed name list (the real registry is exercised in
tests/edge_agent/commands/test_check_config.py).
"""

import textwrap

import pytest

from edge_agent.config import ConfigError, parse_config

PROFILES = {"noise-logger-nl200", "level-radar-lr10"}

HEAD = """\
version: 1
gateway: {site: riverside, id: gw-01}
"""
BUS = """\
buses:
  - {name: water, type: tcp, host: 127.0.0.1}
"""

CASES = [
    (
        "unit id out of range",
        HEAD
        + BUS
        + """\
devices:
  - name: nl-01
    bus: water
    unit_id: 300
    profile: noise-logger-nl200
""",
        ["gateway.yaml:8:14: devices[0].unit_id: 300 is not in 1..247"],
    ),
    (
        "unknown key with a close match",
        HEAD
        + BUS
        + """\
devices:
  - name: nl-01
    bus: water
    unti_id: 3
    profile: noise-logger-nl200
""",
        [
            "gateway.yaml:6:5: devices[0]: missing required key 'unit_id'",
            "gateway.yaml:8:5: devices[0].unti_id: unknown key (did you mean 'unit_id'?)",
        ],
    ),
    (
        "unknown key without a close match lists the known ones",
        HEAD + BUS + "logging: {level: info, colour: red}\n",
        [
            "gateway.yaml:5:24: logging.colour: unknown key (expected one of: format, level)",
        ],
    ),
    (
        "unknown top-level section",
        HEAD + BUS + "uplinks: {}\n",
        ["gateway.yaml:5:1: uplinks: unknown key (did you mean 'uplink'?)"],
    ),
    (
        "wrong types",
        HEAD
        + BUS
        + """\
devices:
  - name: nl-01
    bus: water
    unit_id: one
    profile: 12
    poll_interval_s: fast
    location: [31.2, 121.4]
    overrides: {points: {level: {enabled: maybe}}}
""",
        [
            "gateway.yaml:8:14: devices[0].unit_id: expected an integer, got text 'one'",
            "gateway.yaml:9:14: devices[0].profile: expected text, got integer 12 "
            "(put it in quotes)",
            "gateway.yaml:10:22: devices[0].poll_interval_s: expected a number, got text 'fast'",
            "gateway.yaml:11:15: devices[0].location: expected a mapping, got a list",
            "gateway.yaml:12:43: devices[0].overrides.points.level.enabled: expected true or "
            "false, got text 'maybe'",
        ],
    ),
    (
        "an integer field rejects 1.5 and true",
        HEAD
        + """\
buses:
  - {name: water, type: tcp, host: 127.0.0.1, retries: 1.5, offline_after: true}
""",
        [
            "gateway.yaml:4:56: buses[0].retries: expected an integer, got number 1.5",
            "gateway.yaml:4:76: buses[0].offline_after: expected an integer, got boolean true",
        ],
    ),
    (
        "null where a value is required, NaN, infinity",
        HEAD
        + """\
buses:
  - name: water
    type: tcp
    host: null
    timeout_s: .nan
    backoff: {initial_s: .inf}
""",
        [
            "gateway.yaml:6:11: buses[0].host: expected text, got null",
            "gateway.yaml:7:16: buses[0].timeout_s: .nan is not a finite number",
            "gateway.yaml:8:26: buses[0].backoff.initial_s: .inf is not a finite number",
        ],
    ),
    (
        "numbers too large for a float, and long values cut short",
        HEAD + f"buses: [{{name: a, type: tcp, host: h, timeout_s: {10**400}, port: {10**50}}}]\n",
        [
            "gateway.yaml:3:50: buses[0].timeout_s: 1000000000000000000000000000000000000... "
            "is too large for a number",
            "gateway.yaml:3:459: buses[0].port: 1000000000000000000000000000000000000... is not "
            "in 1..65535",
        ],
    ),
    (
        "bounds: exclusive minimum, minimum, maximum, range",
        HEAD
        + """\
buses:
  - name: water
    type: tcp
    host: 127.0.0.1
    port: 70000
    timeout_s: 0
    offline_after: 0
    backoff: {initial_s: 5, max_s: 2}
""",
        [
            "gateway.yaml:7:11: buses[0].port: 70000 is not in 1..65535",
            "gateway.yaml:8:16: buses[0].timeout_s: 0 must be greater than 0",
            "gateway.yaml:9:20: buses[0].offline_after: 0 is less than the minimum 1",
            "gateway.yaml:10:36: buses[0].backoff.max_s: 2 is less than initial_s 5",
        ],
    ),
    (
        "choices",
        HEAD
        + """\
buses:
  - {name: rs485-1, type: rtu, port: /dev/ttyUSB0, parity: X, stopbits: 3}
uplink: {protocol: 4, encoding: jsn}
""",
        [
            "gateway.yaml:4:60: buses[0].parity: 'X' is not one of N, E, O",
            "gateway.yaml:4:73: buses[0].stopbits: '3' is not one of 1, 2",
            "gateway.yaml:5:20: uplink.protocol: '4' is not one of 5, 3.1.1",
            "gateway.yaml:5:33: uplink.encoding: 'jsn' is not one of json, cbor "
            "(did you mean 'json'?)",
        ],
    ),
    (
        "bus type misspelt and missing",
        HEAD
        + """\
buses:
  - {name: a, type: tcpp, host: 127.0.0.1}
  - {name: b, host: 127.0.0.1}
""",
        [
            "gateway.yaml:4:21: buses[0].type: 'tcpp' is not one of tcp, rtu, rtu_over_tcp "
            "(did you mean 'tcp'?)",
            "gateway.yaml:5:5: buses[1]: missing required key 'type' "
            "(one of tcp, rtu, rtu_over_tcp)",
        ],
    ),
    (
        "a key that belongs to another bus type",
        HEAD
        + """\
buses:
  - {name: a, type: tcp, host: 127.0.0.1, baudrate: 9600}
""",
        [
            "gateway.yaml:4:43: buses[0].baudrate: not a key of type 'tcp' (only type 'rtu' "
            "or 'rtu_over_tcp' has it)",
        ],
    ),
    (
        "duplicate keys",
        HEAD
        + BUS
        + """\
devices:
  - name: nl-01
    bus: water
    unit_id: 1
    unit_id: 2
    profile: noise-logger-nl200
""",
        ["gateway.yaml:9:5: devices[0].unit_id: duplicate key (first at line 8)"],
    ),
    (
        "duplicate names, unknown bus, unit id clash",
        HEAD
        + """\
buses:
  - {name: water, type: tcp, host: 127.0.0.1}
  - {name: water, type: tcp, host: 127.0.0.2}
devices:
  - {name: nl-01, bus: water, unit_id: 1, profile: noise-logger-nl200}
  - {name: nl-01, bus: water, unit_id: 1, profile: noise-logger-nl200}
  - {name: nl-03, bus: watr, unit_id: 3, profile: noise-logger-nl200}
""",
        [
            "gateway.yaml:5:12: buses[1].name: duplicate bus name 'water' (also buses[0])",
            "gateway.yaml:8:12: devices[1].name: duplicate device name 'nl-01' (also devices[0])",
            "gateway.yaml:8:40: devices[1].unit_id: unit 1 is already used on bus 'water' "
            "by devices[0]",
            "gateway.yaml:9:24: devices[2].bus: no bus named 'watr' (did you mean 'water'?)",
        ],
    ),
    (
        "cross checks and section checks still run beside an invalid field",
        HEAD
        + BUS
        + """\
devices:
  - {name: nl-01, bus: watr, unit_id: 300, profile: noise-logger-nl200}
uplink: {url: 'mqtt://broker.example', keepalive_s: 1}
leak_detection: {threshold: 2, confirm_nights: {k: 3, m: 2}}
""",
        [
            "gateway.yaml:6:24: devices[0].bus: no bus named 'watr' (did you mean 'water'?)",
            "gateway.yaml:6:39: devices[0].unit_id: 300 is not in 1..247",
            "gateway.yaml:7:15: uplink.url: plaintext mqtt:// to broker.example (not loopback): "
            "use mqtts:// or set uplink.tls.insecure_plaintext: true",
            "gateway.yaml:7:53: uplink.keepalive_s: 1 is not in 5..3600",
            "gateway.yaml:8:29: leak_detection.threshold: 2 is not in 0..1",
            "gateway.yaml:8:52: leak_detection.confirm_nights.k: 3 is more than m (2)",
        ],
    ),
    (
        "an inter-frame gap on a Modbus TCP bus",
        HEAD + "buses:\n  - {name: a, type: tcp, host: h, inter_frame_gap_ms: 2}\n",
        [
            "gateway.yaml:4:55: buses[0].inter_frame_gap_ms: applies to rtu and rtu_over_tcp "
            "buses, not tcp",
        ],
    ),
    (
        "one serial port, two buses",
        HEAD
        + """\
buses:
  - {name: a, type: rtu, port: /dev/ttyUSB0}
  - {name: b, type: rtu, port: /dev/ttyUSB0}
""",
        [
            "gateway.yaml:5:32: buses[1].port: '/dev/ttyUSB0' is already used by bus 'a' "
            "(a serial port belongs to one bus)",
        ],
    ),
    (
        "empty host and serial port, a profile name with a space",
        HEAD
        + """\
buses:
  - {name: a, type: tcp, host: ""}
  - {name: b, type: rtu, port: ""}
devices:
  - {name: d, bus: a, unit_id: 1, profile: "level radar"}
""",
        [
            "gateway.yaml:4:32: buses[0].host: '' is not allowed: use a host name or an IP address",
            "gateway.yaml:5:32: buses[1].port: '' is not allowed: use a serial device path "
            "without spaces, e.g. /dev/ttyUSB0",
            "gateway.yaml:7:44: devices[0].profile: 'level radar' is not allowed: use a profile "
            "name: letters, digits, '_', '.' or '-'",
        ],
    ),
    (
        "unknown profile",
        HEAD
        + BUS
        + """\
devices:
  - {name: nl-01, bus: water, unit_id: 1, profile: noise-loger-nl200}
""",
        [
            "gateway.yaml:6:52: devices[0].profile: unknown profile 'noise-loger-nl200' "
            "(did you mean 'noise-logger-nl200'?)",
        ],
    ),
    (
        "rules refer to a device that does not exist",
        HEAD
        + BUS
        + """\
devices:
  - {name: lv-01, bus: water, unit_id: 1, profile: level-radar-lr10,
     rules: {rain_gauge: rg-1}}
  - {name: rg-01, bus: water, unit_id: 2, profile: level-radar-lr10}
""",
        [
            "gateway.yaml:7:26: devices[0].rules.rain_gauge: no device named 'rg-1' "
            "(did you mean 'rg-01'?)"
        ],
    ),
    (
        "a list where a list belongs, and a pair of two",
        HEAD
        + """\
buses: {name: water}
devices:
  - name: lv-01
    bus: water
    unit_id: 1
    profile: level-radar-lr10
    overrides: {points: {level: {range: [5], scale: 0}}}
""",
        [
            "gateway.yaml:3:8: buses: expected a list, got a mapping",
            "gateway.yaml:9:41: devices[0].overrides.points.level.range: expected a list of 2 "
            "values, got 1",
            "gateway.yaml:9:53: devices[0].overrides.points.level.scale: must not be 0",
        ],
    ),
    (
        "range and scale of a point override",
        HEAD
        + BUS
        + """\
devices:
  - name: lv-01
    bus: water
    unit_id: 1
    profile: level-radar-lr10
    overrides: {points: {level: {range: [5000, 0], scale: 0}}}
""",
        [
            "gateway.yaml:10:41: devices[0].overrides.points.level.range: low 5000 must be "
            "below high 0",
            "gateway.yaml:10:59: devices[0].overrides.points.level.scale: must not be 0",
        ],
    ),
    (
        "uplink: not an MQTT URL",
        HEAD + BUS + "uplink: {url: 'http://broker.example'}\n",
        ["gateway.yaml:5:15: uplink.url: the scheme must be mqtts:// (TLS) or mqtt://"],
    ),
    (
        "uplink: plaintext to a remote broker needs the explicit opt-out",
        HEAD + BUS + "uplink: {url: 'mqtt://broker.example:1883'}\n",
        [
            "gateway.yaml:5:15: uplink.url: plaintext mqtt:// to broker.example (not loopback): "
            "use mqtts:// or set uplink.tls.insecure_plaintext: true",
        ],
    ),
    (
        "uplink: insecure_plaintext contradicts mqtts",
        HEAD + BUS + "uplink: {url: 'mqtts://broker.example', tls: {insecure_plaintext: true}}\n",
        [
            "gateway.yaml:5:67: uplink.tls.insecure_plaintext: contradicts the mqtts:// url "
            "(TLS is on)",
        ],
    ),
    (
        "uplink: password from two places, missing TLS files, cert without key",
        HEAD
        + BUS
        + """\
uplink:
  url: mqtts://broker.example
  password_env: MQTT_PW
  password_file: mqtt.secret
  tls: {ca_file: /nonexistent/ca.pem, cert_file: client.pem}
""",
        [
            "gateway.yaml:8:18: uplink.password_file: give either password_env or "
            "password_file, not both",
            "gateway.yaml:8:18: uplink.password_file: no such file",
            "gateway.yaml:9:18: uplink.tls.ca_file: no such file: /nonexistent/ca.pem",
            "gateway.yaml:9:50: uplink.tls.cert_file: cert_file needs key_file as well",
            "gateway.yaml:9:50: uplink.tls.cert_file: no such file: {base}/client.pem",
        ],
    ),
    (
        "leak detection",
        HEAD
        + BUS
        + """\
leak_detection:
  night_window: "2:00-26:00"
  threshold: 1.5
  confirm_nights: {k: 4, m: 3}
  materials: {pvcc: {threshold: 0.7}, pe: {band_hz: [300, 10]}}
""",
        [
            "gateway.yaml:6:17: leak_detection.night_window: '2:00-26:00' is not allowed: use "
            "HH:MM-HH:MM, 24-hour clock, e.g. 02:00-04:00",
            "gateway.yaml:7:14: leak_detection.threshold: 1.5 is not in 0..1",
            "gateway.yaml:8:23: leak_detection.confirm_nights.k: 4 is more than m (3)",
            "gateway.yaml:9:15: leak_detection.materials.pvcc: 'pvcc' is not allowed: use a pipe "
            "material: asbestos_cement, cast_iron, ductile_iron, pe, pvc, steel "
            "(did you mean 'pvc'?)",
            "gateway.yaml:9:53: leak_detection.materials.pe.band_hz: low 300 must be below high 10",
        ],
    ),
    (
        "night window of no length, k above m",
        HEAD
        + BUS
        + "leak_detection: {night_window: '03:00-03:00', confirm_nights: {k: 4, m: 3}}\n",
        [
            "gateway.yaml:5:32: leak_detection.night_window: start and end are the same time",
            "gateway.yaml:5:67: leak_detection.confirm_nights.k: 4 is more than m (3)",
        ],
    ),
    (
        "site file that does not exist",
        HEAD + "site_file: no-such-site.yaml\n" + BUS,
        ["gateway.yaml:3:12: site_file: no such file: {base}/no-such-site.yaml"],
    ),
    (
        "keys must be text",
        HEAD + BUS + "1: one\n",
        ["gateway.yaml:5:1: keys must be text, got integer 1"],
    ),
    (
        "merge keys are applied; what they bring is checked like the rest",
        HEAD
        + """\
defaults: &d {type: tcp, host: 127.0.0.1, colour: red}
buses:
  - {<<: *d, name: a}
""",
        [
            "gateway.yaml:3:1: defaults: unknown key (expected one of: buses, devices, gateway, "
            "leak_detection, logging, profiles_dir, rules, site_file, storage, uplink, version)",
            "gateway.yaml:3:43: buses[0].colour: unknown key (expected one of: backoff, host, "
            "inter_frame_gap_ms, name, offline_after, port, retries, timeout_s, turnaround_ms, "
            "type)",
        ],
    ),
    (
        "a merge key that brings in its own mapping",
        "version: 1\ngateway: &g {<<: *g, site: s, id: g}\nbuses: []\n",
        ["gateway.yaml:2:10: gateway: a merge key (<<) brings in its own mapping"],
    ),
    (
        "merge keys in a loop",
        HEAD + "buses: []\nlogging: &a {level: info, <<: {<<: *a}}\n",
        ["gateway.yaml:4:10: logging: a merge key (<<) brings in its own mapping"],
    ),
    (
        "a list that contains itself",
        HEAD + "buses: &b [*b]\n",
        ["gateway.yaml:3:8: buses[0]: expected a mapping, got a list"],
    ),
    (
        "explicit tags with values they cannot hold",
        HEAD + BUS + "storage: {outbox_max_mb: !!float abc, outbox_max_age_days: !!timestamp x}\n",
        [
            "gateway.yaml:5:26: storage.outbox_max_mb: cannot read this value: it is not a valid "
            "!!float",
            "gateway.yaml:5:60: storage.outbox_max_age_days: cannot read this value: it is not a "
            "valid !!timestamp",
        ],
    ),
    # Whole-document problems: exactly one line each.
    (
        "empty file",
        "",
        ["gateway.yaml:1:1: the file is empty (expected a mapping with version, gateway, buses)"],
    ),
    (
        "only a comment",
        "# nothing yet\n",
        ["gateway.yaml:1:1: the file is empty (expected a mapping with version, gateway, buses)"],
    ),
    (
        "top level is a list",
        "- version: 1\n",
        ["gateway.yaml:1:1: expected a mapping at the top level, got a list"],
    ),
    (
        "top level is text",
        "hello\n",
        ["gateway.yaml:1:1: expected a mapping at the top level, got text 'hello'"],
    ),
    (
        "wrong version hides everything else",
        "version: 2\ngateway: {site: a/b}\nbogus: 1\n",
        ["gateway.yaml:1:10: version: '2' is not supported (this edge-agent reads 1)"],
    ),
    (
        "missing version",
        "gateway: {site: a, id: b}\nbuses: []\n",
        ["gateway.yaml:1:1: missing required key 'version' (this edge-agent reads 1)"],
    ),
    (
        "YAML syntax error",
        HEAD + "buses:\n  - name: water\n   type: tcp\n",
        ["gateway.yaml:5:4: YAML syntax: expected <block end>, but found '<block mapping start>'"],
    ),
    (
        "unclosed flow mapping",
        "version: 1\ngateway: {site: a, id: b\nbuses: []\n",
        ["gateway.yaml:3:6: YAML syntax: expected ',' or '}', but got ':'"],
    ),
    (
        "two documents",
        HEAD + BUS + "---\nversion: 1\n",
        ["gateway.yaml:5:1: YAML syntax: but found another document"],
    ),
    (
        "a control character",
        HEAD + BUS + "logging: {level: info\x07}\n",
        [
            "gateway.yaml:5:22: YAML syntax: unacceptable character #x0007: special characters are "
            "not allowed"
        ],
    ),
    (
        "undefined alias",
        HEAD + "buses: *nothing\n",
        ["gateway.yaml:3:8: YAML syntax: found undefined alias 'nothing'"],
    ),
    (
        "an unknown tag",
        HEAD + BUS + "site_file: !include other.yaml\n",
        [
            "gateway.yaml:5:12: site_file: cannot read this value: could not determine a "
            "constructor for the tag '!include'",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_lines(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="gateway.yaml", base_dir=str(tmp_path), profile_names=PROFILES)
    want = [line.replace("{base}", str(tmp_path)) for line in expected]
    assert str(info.value).splitlines() == want
    assert [str(p) for p in info.value.problems] == want


# Names become MQTT topic levels: anything that would break a topic is refused at load time.
TOPIC_UNSAFE = ["a/b", "a+", "#", "bad\x01name", "", "$SYS", "tab\there", "new\nline", "sp ace"]
NAME_FIELDS = ["gateway.site", "gateway.id", "buses[0].name", "devices[0].name"]


def _named(field: str, value: str) -> str:
    names = {
        "gateway.site": "riverside",
        "gateway.id": "gw-01",
        "buses[0].name": "water",
        "devices[0].name": "nl-01",
    }
    names[field] = value
    q = {
        k: '"' + v.encode("unicode_escape").decode().replace('"', '\\"') + '"'
        for k, v in names.items()
    }
    return textwrap.dedent(f"""\
        version: 1
        gateway: {{site: {q["gateway.site"]}, id: {q["gateway.id"]}}}
        buses:
          - {{name: {q["buses[0].name"]}, type: tcp, host: 127.0.0.1}}
        devices:
          - {{name: {q["devices[0].name"]}, bus: {q["buses[0].name"]}, unit_id: 1, profile: p}}
        """)


@pytest.mark.parametrize("field", NAME_FIELDS)
@pytest.mark.parametrize("value", TOPIC_UNSAFE, ids=repr)
def test_topic_unsafe_names_are_rejected(field, value):
    with pytest.raises(ConfigError) as info:
        parse_config(_named(field, value), file="gateway.yaml")
    lines = str(info.value).splitlines()
    assert lines, "no problem reported"
    first = lines[0]
    assert first.startswith("gateway.yaml:") and f" {field}: " in first
    assert "it becomes an MQTT topic level" in first
    assert all("\n" not in p.message for p in info.value.problems)


def test_topic_safe_names_pass():
    cfg = parse_config(_named("devices[0].name", "NL_01.a-b"), file="gateway.yaml")
    assert cfg.devices[0].name == "NL_01.a-b"


def _nested_aliases(first: str, wrap: str) -> list[str]:
    """``a0: &a0 <first>`` and seven levels ``aN: &aN <wrap of ten *aN-1>``: 10 ** 7 leaves."""
    levels = [f"a0: &a0 {first}"]
    for i in range(1, 8):
        levels.append(f"a{i}: &a{i} " + wrap.format(", ".join([f"*a{i - 1}"] * 10)))
    return levels


def test_alias_bomb_is_one_line():
    # Merge keys re-read their sources: 10 ** 7 entries from a 10-line file. The loader stops
    # counting at MAX_NODE_VISITS and says so in one line.
    levels = _nested_aliases("{k: 1}", "{{<<: [{}]}}")
    text = "version: 1\n" + "\n".join(levels) + "\ngateway: {<<: *a7, site: s, id: g}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="gateway.yaml")
    assert len(info.value.problems) == 1
    assert "expands to more than" in str(info.value)


def test_list_aliases_follow_the_types_and_do_not_multiply():
    levels = _nested_aliases("{type: tcp, host: h, name: n}", "[{}]")
    text = "version: 1\n" + "\n".join(levels) + "\nbuses: *a7\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="gateway.yaml")
    assert len(info.value.problems) < 30
    # Each of the ten buses is a list, said once: not cut short by the expansion limit.
    assert "expands to more than" not in str(info.value)
    bus_problems = [str(p) for p in info.value.problems if p.path.startswith("buses")]
    assert bus_problems == [
        f"gateway.yaml:8:5: buses[{i}]: expected a mapping, got a list" for i in range(10)
    ]


def test_all_problems_are_collected_in_one_pass():
    text = (
        HEAD
        + """\
buses:
  - {name: a, type: tcp, host: 127.0.0.1, port: 0}
  - {name: b, type: rtu, port: /dev/ttyS0, baudrate: 12}
devices:
  - {name: d1, bus: a, unit_id: 0, profile: p}
  - {name: d2, bus: b, unit_id: 248, profile: p}
storage: {outbox_max_mb: -1}
"""
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="gateway.yaml")
    paths = [p.path for p in info.value.problems]
    assert paths == [
        "buses[0].port",
        "buses[1].baudrate",
        "devices[0].unit_id",
        "devices[1].unit_id",
        "storage.outbox_max_mb",
    ]


@pytest.mark.parametrize(
    "text",
    [
        HEAD + BUS + 'site_file: "a\\nb\\rc\\x85d"\n',
        HEAD + BUS + 'uplink: {url: "mqtt://bro\\x85ker"}\n',
        HEAD + BUS + 'logging: {"lev\\nel": info}\n',
    ],
)
def test_a_problem_is_always_one_printable_line(text):
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="gateway.yaml")
    for p in info.value.problems:
        assert str(p).isprintable(), str(p)
    assert len(str(info.value).splitlines()) == len(info.value.problems)
