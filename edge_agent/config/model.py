"""The gateway config as frozen dataclasses: one class per YAML section, field names = YAML keys.

``edge_agent.config.loader`` builds these from YAML (with file:line:col problems), the JSON
Schema and ``docs/config.md`` are generated from them. Every default is a named constant here;
bounds and patterns live in each field's ``meta()``; rules spanning fields live in a section's
``config_checks()``. Components receive these objects, never raw dicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from drivers.profile import PointOverride
from dsp.pipes import MATERIALS
from edge_agent.rules.config import DeviceRulesConfig, RulesConfig
from yamlread import meta

__all__ = [
    "CONFIG_VERSION",
    "AnalysisWorkerConfig",
    "Backoff",
    "Bus",
    "CommandsConfig",
    "ConfirmNights",
    "Device",
    "DeviceOverrides",
    "GatewayConfig",
    "GatewayIdentity",
    "HomeAssistantConfig",
    "LeakDetectionConfig",
    "Location",
    "LoggingConfig",
    "MaterialOverride",
    "PointOverride",
    "Rs485Settings",
    "RtuBus",
    "RtuOverTcpBus",
    "SparkplugConfig",
    "StorageConfig",
    "TcpBus",
    "TlsConfig",
    "UplinkConfig",
]

CONFIG_VERSION = 1

# Buses.
DEFAULT_MODBUS_TCP_PORT = 502
DEFAULT_BUS_TIMEOUT_S = 0.5
MAX_TIMEOUT_S = 60.0
DEFAULT_BUS_RETRIES = 1
DEFAULT_OFFLINE_AFTER = 3  # consecutive failed polls before a device counts as offline
MAX_RETRIES = 10
DEFAULT_BACKOFF_INITIAL_S = 1.0
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_BAUDRATE = 9600
MIN_BAUDRATE = 300
MAX_BAUDRATE = 921600
DEFAULT_PARITY: Final = "N"
DEFAULT_STOPBITS: Final = 1
DEFAULT_BYTESIZE: Final = 8

# Devices.
DEFAULT_POLL_INTERVAL_S = 10.0
MAX_POLL_INTERVAL_S = 86400.0
MIN_UNIT_ID = 1
MAX_UNIT_ID = 247  # Modbus: 0 is broadcast, 248..255 reserved

# Uplink.
DEFAULT_MQTT_PROTOCOL: Final = 5
DEFAULT_TOPIC_ROOT = "lifeline/v1"
DEFAULT_KEEPALIVE_S = 30
DEFAULT_INFLIGHT = 32
DEFAULT_ENCODING: Final = "json"
DEFAULT_HA_DISCOVERY_PREFIX = "homeassistant"
DEFAULT_HA_STATUS_TOPIC = "homeassistant/status"
DEFAULT_COMMAND_MAX_AGE_S = 300.0
MAX_COMMAND_MAX_AGE_S = 86400.0

# Storage.
DEFAULT_STATE_DIR = "/var/lib/edge-agent"
DEFAULT_OUTBOX_MAX_MB = 64.0
DEFAULT_OUTBOX_MAX_AGE_DAYS = 30.0
DEFAULT_TELEMETRY_SYNC: Final = "normal"

# Leak detection (noise loggers judge the quiet night window, see docs/architecture.md).
DEFAULT_RECORDING_INTERVAL_S = 3600.0
DEFAULT_NIGHT_WINDOW = "02:00-04:00"
DEFAULT_RECORDING_DURATION_S = 8
MAX_RECORDING_DURATION_S = 600
DEFAULT_SAMPLE_RATE_HZ = 4096
DEFAULT_LEAK_THRESHOLD = 0.5
DEFAULT_CONFIRM_K = 2
DEFAULT_CONFIRM_M = 3
MAX_CONFIRM_NIGHTS = 30
# The analysis worker (edge_agent/daemon/worker.py): a process that holds numba and LLVM only
# while there is sound to analyse. Its memory limit stays below the unit's MemoryMax
# (systemd/edge-agent.service, tests/test_systemd_unit.py) so the worker meets its own limit
# before the kernel's.
DEFAULT_WORKER_IDLE_EXIT_S = 60.0
DEFAULT_WORKER_MEMORY_MB = 512.0
DEFAULT_WORKER_TIMEOUT_S = 120.0

# Logging.
DEFAULT_LOG_LEVEL: Final = "info"
DEFAULT_LOG_FORMAT: Final = "auto"

# Names that become MQTT topic levels (site, gateway, bus, device): no '/', '+', '#', no
# control characters, never empty, never a leading '$' (reserved for broker topics).
NAME_PATTERN = r"[A-Za-z0-9_.-]+"
NAME_HELP = "use letters, digits, '_', '.' or '-' (it becomes an MQTT topic level)"
ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
HOST_PATTERN = r"[A-Za-z0-9_.:%-]+"  # names, IPv4, IPv6 (no brackets), zone ids
TOPIC_ROOT_PATTERN = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"
MATERIAL_PATTERN = "|".join(sorted(MATERIALS))
NIGHT_WINDOW_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")

Checks = Iterator[tuple[str, str]]


def _name(help: str) -> dict[str, Any]:
    return meta(help, pattern=NAME_PATTERN, pattern_help=NAME_HELP)


def _topic(help: str) -> dict[str, Any]:
    return meta(
        help,
        pattern=TOPIC_ROOT_PATTERN,
        pattern_help="topic levels of letters, digits, '_', '.', '-' separated by '/'",
    )


def _host(help: str, **kw: Any) -> dict[str, Any]:
    return meta(help, pattern=HOST_PATTERN, pattern_help="use a host name or an IP address", **kw)


# --------------------------------------------------------------------------------------------
# Identity


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayIdentity:
    """Who this gateway is: the MQTT topic levels ``lifeline/v1/{site}/{id}/``."""

    site: str = field(metadata=_name("site name (the same on every gateway of the site)"))
    id: str = field(metadata=_name("gateway id, unique within the site"))


# --------------------------------------------------------------------------------------------
# Buses


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry spacing for an offline device: doubles from ``initial_s`` up to ``max_s``."""

    initial_s: float = field(
        default=DEFAULT_BACKOFF_INITIAL_S,
        metadata=meta(
            "first wait after a device goes offline", min=0, exclusive_min=True, unit="s"
        ),
    )
    max_s: float = field(
        default=DEFAULT_BACKOFF_MAX_S,
        metadata=meta("longest wait between retries", min=0, exclusive_min=True, unit="s"),
    )

    def config_checks(self) -> Checks:
        if self.max_s < self.initial_s:
            yield "max_s", f"{self.max_s:g} is less than initial_s {self.initial_s:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rs485Settings:
    """Kernel RS-485 mode (RTS drives the transceiver's direction); off for adapters that switch
    direction themselves (most USB RS-485 sticks)."""

    enabled: bool = field(default=False, metadata=meta("use the kernel's RS-485 mode"))
    rts_level_for_tx: bool = field(default=True, metadata=meta("RTS level while sending"))
    rts_level_for_rx: bool = field(default=False, metadata=meta("RTS level while receiving"))
    delay_before_tx_s: float | None = field(
        default=None, metadata=meta("delay after raising RTS before sending", min=0, unit="s")
    )
    delay_before_rx_s: float | None = field(
        default=None, metadata=meta("delay after sending before switching RTS", min=0, unit="s")
    )


def _bus_name() -> Any:
    return field(metadata=_name("bus name, unique in this file; devices refer to it"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _BusCommon:
    """Settings every bus type has (the poll loop's, not the wire's)."""

    timeout_s: float = field(
        default=DEFAULT_BUS_TIMEOUT_S,
        metadata=meta(
            "how long to wait for an answer beyond its time on the wire (a 120-register "
            "answer takes 0.28 s at 9600 baud on its own)",
            min=0,
            max=MAX_TIMEOUT_S,
            exclusive_min=True,
            unit="s",
        ),
    )
    retries: int = field(
        default=DEFAULT_BUS_RETRIES,
        metadata=meta(
            "extra attempts after a timeout (none when probing an offline device)",
            min=0,
            max=MAX_RETRIES,
        ),
    )
    offline_after: int = field(
        default=DEFAULT_OFFLINE_AFTER,
        metadata=meta("consecutive failed polls before a device counts as offline", min=1),
    )
    backoff: Backoff = field(default_factory=Backoff, metadata=meta("offline retry spacing"))
    inter_frame_gap_ms: float | None = field(
        default=None,
        metadata=meta(
            "silence between frames (null: 3.5 characters at the baud rate, 1.75 ms above "
            "19200 baud; no gap on Modbus TCP)",
            min=0,
            unit="ms",
        ),
    )
    turnaround_ms: float | None = field(
        default=None,
        metadata=meta(
            "how long devices take to start answering, assumed until measured per device "
            "(null: 10 ms; rtu and rtu_over_tcp buses)",
            min=0,
            max=MAX_TIMEOUT_S * 1000,
            unit="ms",
        ),
    )


def _baudrate(what: str) -> Any:
    return field(
        default=DEFAULT_BAUDRATE,
        metadata=meta(what, min=MIN_BAUDRATE, max=MAX_BAUDRATE, unit="baud"),
    )


def _parity() -> Any:
    return field(default=DEFAULT_PARITY, metadata=meta("N none, E even, O odd"))


def _stopbits() -> Any:
    return field(default=DEFAULT_STOPBITS, metadata=meta("stop bits"))


def _bytesize() -> Any:
    return field(default=DEFAULT_BYTESIZE, metadata=meta("data bits"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpBus(_BusCommon):
    """Modbus TCP (a PLC, a Modbus TCP gateway, the simulator)."""

    name: str = _bus_name()
    type: Literal["tcp"] = field(metadata=meta("bus type"))
    host: str = field(metadata=_host("host name or IP address", example="192.0.2.10"))
    port: int = field(default=DEFAULT_MODBUS_TCP_PORT, metadata=meta("TCP port", min=1, max=65535))

    def config_checks(self) -> Checks:
        if self.inter_frame_gap_ms is not None:
            # Modbus TCP frames carry their own length; a gap would only slow the bus down.
            yield "inter_frame_gap_ms", "applies to rtu and rtu_over_tcp buses, not tcp"
        if self.turnaround_ms is not None:
            # A TCP device's answer delay is part of the round trip, measured as it comes.
            yield "turnaround_ms", "applies to rtu and rtu_over_tcp buses, not tcp"


@dataclass(frozen=True, slots=True, kw_only=True)
class RtuOverTcpBus(_BusCommon):
    """Modbus RTU frames tunnelled through a serial device server (transparent TCP mode).
    The line settings are the serial line's behind the server (the server sets them; here
    they price each request's time on that line)."""

    name: str = _bus_name()
    type: Literal["rtu_over_tcp"] = field(metadata=meta("bus type"))
    host: str = field(metadata=_host("device server host name or IP address"))
    port: int = field(metadata=meta("device server TCP port", min=1, max=65535, example=4001))
    baudrate: int = _baudrate("line speed of the serial line behind the device server")
    parity: Literal["N", "E", "O"] = _parity()
    stopbits: Literal[1, 2] = _stopbits()
    bytesize: Literal[7, 8] = _bytesize()


@dataclass(frozen=True, slots=True, kw_only=True)
class RtuBus(_BusCommon):
    """Modbus RTU on a local serial port (RS-485)."""

    name: str = _bus_name()
    type: Literal["rtu"] = field(metadata=meta("bus type"))
    port: str = field(
        metadata=meta(
            "serial device",
            pattern=r"\S+",
            pattern_help="use a serial device path without spaces, e.g. /dev/ttyUSB0",
            example="/dev/ttyUSB0",
        )
    )
    baudrate: int = _baudrate("line speed")
    parity: Literal["N", "E", "O"] = _parity()
    stopbits: Literal[1, 2] = _stopbits()
    bytesize: Literal[7, 8] = _bytesize()
    rs485: Rs485Settings = field(
        default_factory=Rs485Settings, metadata=meta("RS-485 direction control (RTS)")
    )


Bus = TcpBus | RtuBus | RtuOverTcpBus


# --------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where a device is (WGS-84), so every event lands on the right spot of the city model."""

    lat: float = field(metadata=meta("latitude", min=-90, max=90, unit="deg"))
    lon: float = field(metadata=meta("longitude", min=-180, max=180, unit="deg"))
    description: str | None = field(
        default=None, metadata=meta("where to find it", example="valve chamber V3")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceOverrides:
    """Per-device changes to the device's profile."""

    points: dict[str, PointOverride] = field(
        default_factory=dict, metadata=meta("changes per point name of the profile")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """One Modbus device on one bus."""

    name: str = field(metadata=_name("device name, unique in this file (MQTT topic level)"))
    bus: str = field(metadata=_name("name of the bus it is on"))
    unit_id: int = field(metadata=meta("Modbus unit (slave) id", min=MIN_UNIT_ID, max=MAX_UNIT_ID))
    profile: str = field(
        metadata=meta(
            "device profile name (shipped or in profiles_dir)",
            pattern=NAME_PATTERN,
            pattern_help="use a profile name: letters, digits, '_', '.' or '-'",
            example="noise-logger-nl200",
        )
    )
    poll_interval_s: float = field(
        default=DEFAULT_POLL_INTERVAL_S,
        metadata=meta(
            "time between polls", min=0, max=MAX_POLL_INTERVAL_S, exclusive_min=True, unit="s"
        ),
    )
    asset_id: str | None = field(
        default=None, metadata=meta("asset id in the city model", example="CIM-WS-NL-0001")
    )
    location: Location | None = field(default=None, metadata=meta("coordinates"))
    pipe_segment: str | None = field(
        default=None, metadata=meta("pipe it listens to / sits on", example="P-03")
    )
    timeout_s: float | None = field(
        default=None,
        metadata=meta(
            "answer timeout (null: the bus's)",
            min=0,
            max=MAX_TIMEOUT_S,
            exclusive_min=True,
            unit="s",
        ),
    )
    retries: int | None = field(
        default=None, metadata=meta("retries (null: the bus's)", min=0, max=MAX_RETRIES)
    )
    overrides: DeviceOverrides = field(
        default_factory=DeviceOverrides, metadata=meta("changes to the profile")
    )
    rules: DeviceRulesConfig = field(
        default_factory=DeviceRulesConfig, metadata=meta("per-device rule settings")
    )


# --------------------------------------------------------------------------------------------
# Uplink


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """TLS for the MQTT connection (used with ``mqtts://``)."""

    ca_file: str | None = field(
        default=None, metadata=meta("CA bundle (null: the system's)", path=True)
    )
    cert_file: str | None = field(
        default=None, metadata=meta("client certificate (mutual TLS)", path=True)
    )
    key_file: str | None = field(
        default=None, metadata=meta("client private key (mutual TLS)", path=True)
    )
    insecure_plaintext: bool = field(
        default=False,
        metadata=meta("allow mqtt:// (no TLS) to a host that is not loopback: test benches only"),
    )

    def config_checks(self) -> Checks:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            present = "cert_file" if missing == "key_file" else "key_file"
            yield present, f"{present} needs {missing} as well"


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery: one HA device per field device (linked to the gateway's),
    a sensor per point, a binary sensor per alarm (docs/mqtt.md, Home Assistant)."""

    enabled: bool = field(default=False, metadata=meta("publish discovery configs"))
    discovery_prefix: str = field(
        default=DEFAULT_HA_DISCOVERY_PREFIX,
        metadata=_topic("Home Assistant's discovery prefix"),
    )
    status_topic: str = field(
        default=DEFAULT_HA_STATUS_TOPIC,
        metadata=_topic(
            "where Home Assistant announces itself: `online` there republishes the configs"
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SparkplugConfig:
    """Eclipse Sparkplug B 3.0 edge node on its own MQTT session (its Will is the NDEATH)."""

    enabled: bool = field(default=False, metadata=meta("run a Sparkplug B edge node"))
    group_id: str | None = field(
        default=None, metadata=_name("Sparkplug group id (null: the site name)")
    )
    edge_node_id: str | None = field(
        default=None, metadata=_name("Sparkplug edge node id (null: the gateway id)")
    )
    primary_host_id: str | None = field(
        default=None,
        metadata=_name(
            "wait for this host application's spBv1.0/STATE/<id> online before the births "
            "(null: do not wait)"
        ),
    )
    client_id: str | None = field(
        default=None,
        metadata=meta(
            "MQTT client id of the Sparkplug session (null: the uplink's client id + '-spb')",
            pattern=NAME_PATTERN,
            pattern_help="use letters, digits, '_', '.' or '-'",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandsConfig:
    """Commands to the gateway on its own ``cmd/#`` topics: only ``record``, ``rebirth`` and
    ``ping``; who may send them is the broker's ACL (docs/mqtt.md, Commands)."""

    enabled: bool = field(default=False, metadata=meta("subscribe to cmd/# and answer"))
    max_age_s: float = field(
        default=DEFAULT_COMMAND_MAX_AGE_S,
        metadata=meta(
            "refuse a command whose ts is older than this (or as far in the future)",
            min=0,
            max=MAX_COMMAND_MAX_AGE_S,
            exclusive_min=True,
            unit="s",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkConfig:
    """The MQTT broker connection. ``url: null`` runs without an uplink (outbox only)."""

    url: str | None = field(
        default=None,
        metadata=meta(
            "broker URL, mqtts://host:port or mqtt://host:port (--mqtt overrides)",
            example="mqtts://broker.example:8883",
        ),
    )
    protocol: Literal[5, "3.1.1"] = field(
        default=DEFAULT_MQTT_PROTOCOL, metadata=meta("MQTT protocol version")
    )
    client_id: str | None = field(
        default=None,
        metadata=meta(
            "MQTT client id (null: <site>-<gateway id>)",
            pattern=NAME_PATTERN,
            pattern_help="use letters, digits, '_', '.' or '-'",
        ),
    )
    username: str | None = field(default=None, metadata=meta("MQTT user name"))
    password_env: str | None = field(
        default=None,
        metadata=meta(
            "name of the environment variable holding the password",
            pattern=ENV_NAME_PATTERN,
            pattern_help="an environment variable name, not the password itself",
            secret=True,
            example="EDGE_AGENT_MQTT_PASSWORD",
        ),
    )
    password_file: str | None = field(
        default=None,
        metadata=meta(
            "file holding the password (one line, e.g. mode 0600)",
            secret=True,
            path=True,
            example="/etc/edge-agent/mqtt.secret",
        ),
    )
    tls: TlsConfig = field(default_factory=TlsConfig, metadata=meta("TLS settings"))
    topic_root: str = field(
        default=DEFAULT_TOPIC_ROOT,
        metadata=_topic("topic prefix before {site}/{gateway}/"),
    )
    keepalive_s: int = field(
        default=DEFAULT_KEEPALIVE_S, metadata=meta("MQTT keepalive", min=5, max=3600, unit="s")
    )
    inflight: int = field(
        default=DEFAULT_INFLIGHT, metadata=meta("unacknowledged QoS 1 messages", min=1, max=1000)
    )
    encoding: Literal["json", "cbor"] = field(
        default=DEFAULT_ENCODING, metadata=meta("event payload encoding")
    )
    retained_state: bool = field(
        default=True,
        metadata=meta(
            "retained current state per device: availability, active alarms, latest values"
        ),
    )
    home_assistant: HomeAssistantConfig = field(
        default_factory=HomeAssistantConfig, metadata=meta("Home Assistant MQTT discovery")
    )
    sparkplug: SparkplugConfig = field(
        default_factory=SparkplugConfig, metadata=meta("Sparkplug B edge node")
    )
    commands: CommandsConfig = field(
        default_factory=CommandsConfig, metadata=meta("commands on cmd/#")
    )

    def config_checks(self) -> Checks:
        if self.password_env is not None and self.password_file is not None:
            yield "password_file", "give either password_env or password_file, not both"
        if self.home_assistant.enabled and not self.retained_state:
            yield (
                "home_assistant.enabled",
                "Home Assistant's entities read the retained state: set retained_state: true",
            )


# --------------------------------------------------------------------------------------------
# Storage, leak detection, logging


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    """The durable outbox and other state."""

    state_dir: str = field(
        default=DEFAULT_STATE_DIR,
        metadata=meta("state directory (--state-dir overrides)", path=True),
    )
    outbox_max_mb: float = field(
        default=DEFAULT_OUTBOX_MAX_MB,
        metadata=meta(
            "outbox size cap; the oldest telemetry goes first, then the oldest events",
            min=0,
            exclusive_min=True,
            unit="MB",
        ),
    )
    outbox_max_age_days: float = field(
        default=DEFAULT_OUTBOX_MAX_AGE_DAYS,
        metadata=meta("drop undelivered entries older than this", min=0, exclusive_min=True),
    )
    telemetry_sync: Literal["off", "normal", "full"] = field(
        default=DEFAULT_TELEMETRY_SYNC,
        metadata=meta("SQLite synchronous mode for telemetry (alarms are always full)"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmNights:
    """A leak is confirmed when ``k`` of the last ``m`` nights were positive."""

    k: int = field(
        default=DEFAULT_CONFIRM_K, metadata=meta("positive nights", min=1, max=MAX_CONFIRM_NIGHTS)
    )
    m: int = field(
        default=DEFAULT_CONFIRM_M, metadata=meta("nights looked at", min=1, max=MAX_CONFIRM_NIGHTS)
    )

    def config_checks(self) -> Checks:
        if self.k > self.m:
            yield "k", f"{self.k} is more than m ({self.m})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisWorkerConfig:
    """The process leak analysis runs in: started when recordings need analysing, closed when
    idle, so the resident daemon never holds numba and LLVM."""

    idle_exit_s: float = field(
        default=DEFAULT_WORKER_IDLE_EXIT_S,
        metadata=meta("close the worker after this long without a job", min=1, max=86400, unit="s"),
    )
    memory_mb: float = field(
        default=DEFAULT_WORKER_MEMORY_MB,
        metadata=meta(
            "the worker's data-segment limit: beyond it a job fails as out of memory and is "
            "retried by a fresh worker",
            min=160,
            max=65536,
            unit="MB",
        ),
    )
    timeout_s: float = field(
        default=DEFAULT_WORKER_TIMEOUT_S,
        metadata=meta(
            "a worker silent this long during a job is hung: killed, the job retried",
            min=10,
            max=3600,
            unit="s",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MaterialOverride:
    """Per pipe material changes to leak detection; ``null`` keeps the built-in value."""

    band_hz: tuple[float, float] | None = field(
        default=None,
        metadata=meta("analysis band [low, high]", min=0, exclusive_min=True, unit="Hz"),
    )
    threshold: float | None = field(
        default=None, metadata=meta("leak score threshold", min=0, max=1)
    )

    def config_checks(self) -> Checks:
        if self.band_hz is not None and not self.band_hz[0] < self.band_hz[1]:
            yield "band_hz", f"low {self.band_hz[0]:g} must be below high {self.band_hz[1]:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakDetectionConfig:
    """Noise-logger recordings and the leak decision over nights."""

    recording_interval_s: float = field(
        default=DEFAULT_RECORDING_INTERVAL_S,
        metadata=meta(
            "time between recordings inside the night window", min=60, max=86400, unit="s"
        ),
    )
    night_window: str = field(
        default=DEFAULT_NIGHT_WINDOW,
        metadata=meta(
            "local quiet hours HH:MM-HH:MM (may cross midnight)",
            pattern=NIGHT_WINDOW_RE.pattern,
            pattern_help="use HH:MM-HH:MM, 24-hour clock, e.g. 02:00-04:00",
        ),
    )
    duration_s: int = field(
        default=DEFAULT_RECORDING_DURATION_S,
        metadata=meta("recording length", min=1, max=MAX_RECORDING_DURATION_S, unit="s"),
    )
    sample_rate_hz: int = field(
        default=DEFAULT_SAMPLE_RATE_HZ,
        metadata=meta("expected logger sample rate", min=100, max=100_000, unit="Hz"),
    )
    threshold: float = field(
        default=DEFAULT_LEAK_THRESHOLD,
        metadata=meta("leak score at or above which a recording is positive", min=0, max=1),
    )
    confirm_nights: ConfirmNights = field(
        default_factory=ConfirmNights, metadata=meta("persistence over nights")
    )
    materials: dict[str, MaterialOverride] = field(
        default_factory=dict,
        metadata=meta(
            "overrides per pipe material",
            pattern=MATERIAL_PATTERN,
            pattern_help=f"use a pipe material: {', '.join(sorted(MATERIALS))}",
        ),
    )
    worker: AnalysisWorkerConfig = field(
        default_factory=AnalysisWorkerConfig, metadata=meta("the analysis worker process")
    )

    def config_checks(self) -> Checks:
        m = NIGHT_WINDOW_RE.fullmatch(self.night_window)
        if m is not None and m.group(1, 2) == m.group(3, 4):
            yield "night_window", "start and end are the same time"
        if self.duration_s >= self.recording_interval_s:
            yield (
                "duration_s",
                (
                    f"{self.duration_s} is not shorter than recording_interval_s "
                    f"{self.recording_interval_s:g}"
                ),
            )

    def night_window_minutes(self) -> tuple[int, int]:
        """(start, end) as minutes after local midnight; end < start crosses midnight."""
        m = NIGHT_WINDOW_RE.fullmatch(self.night_window)
        if m is None:  # the loader rejected it already; a hand-built config may not have
            raise ValueError(f"night_window {self.night_window!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        return h1 * 60 + m1, h2 * 60 + m2


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    """Log output (structlog)."""

    level: Literal["debug", "info", "warning", "error"] = field(
        default=DEFAULT_LOG_LEVEL, metadata=meta("lowest level written")
    )
    format: Literal["auto", "console", "json"] = field(
        default=DEFAULT_LOG_FORMAT,
        metadata=meta("auto: console on a terminal, JSON lines otherwise (journald)"),
    )


# --------------------------------------------------------------------------------------------
# The file


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """One gateway's whole config. Relative paths are already resolved against the directory
    of ``source_path``."""

    version: Literal[1] = field(metadata=meta("config format version"))
    gateway: GatewayIdentity = field(metadata=meta("identity"))
    site_file: str | None = field(
        default=None,
        metadata=meta("site file: pipe network and device placements", path=True),
    )
    profiles_dir: str | None = field(
        default=None,
        metadata=meta("user device profiles (override shipped ones by name)", path=True),
    )
    buses: tuple[Bus, ...] = field(metadata=meta("field buses"))
    devices: tuple[Device, ...] = field(default=(), metadata=meta("devices on the buses"))
    uplink: UplinkConfig = field(default_factory=UplinkConfig, metadata=meta("MQTT uplink"))
    storage: StorageConfig = field(default_factory=StorageConfig, metadata=meta("storage"))
    leak_detection: LeakDetectionConfig = field(
        default_factory=LeakDetectionConfig, metadata=meta("leak detection")
    )
    rules: RulesConfig = field(
        default_factory=RulesConfig, metadata=meta("rule defaults per point role")
    )
    logging: LoggingConfig = field(default_factory=LoggingConfig, metadata=meta("logging"))
    # Not YAML keys: where the config came from, and each YAML path's (line, col) so later
    # stages (profile checks, secrets) can still point at the right line.
    source_path: str = field(default="", compare=False, metadata={"internal": True})
    marks: dict[str, tuple[int, int]] = field(
        default_factory=dict, compare=False, repr=False, metadata={"internal": True}
    )

    def bus(self, name: str) -> Bus:
        """The bus called ``name``; raises ``KeyError``."""
        for b in self.buses:
            if b.name == name:
                return b
        raise KeyError(name)

    def devices_on(self, bus_name: str) -> tuple[Device, ...]:
        """The devices on one bus, in file order."""
        return tuple(d for d in self.devices if d.bus == bus_name)

    @property
    def client_id(self) -> str:
        """The MQTT client id: the configured one or ``<site>-<gateway id>``."""
        return self.uplink.client_id or f"{self.gateway.site}-{self.gateway.id}"
