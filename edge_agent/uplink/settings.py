"""Uplink settings: the broker address parsed from ``mqtt://`` / ``mqtts://`` URLs and one frozen
object with everything the MQTT client needs, adapted from the config (``from_config``).

Security defaults (docs/mqtt.md): TLS unless the broker is on loopback. ``mqtt://`` to any
other host is refused unless ``uplink.tls.insecure_plaintext`` is set. Credentials never go in a
URL (a URL ends up in logs and ``status``); the password is a ``Secret`` that prints ``***``.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from edge_agent.config.secrets import Secret, resolve_secret
from edge_agent.errors import UsageError

__all__ = [
    "DEFAULT_PORTS",
    "BrokerAddress",
    "TlsFiles",
    "UplinkSettings",
    "parse_broker_url",
]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_TOPIC_ROOT = "lifeline/v1"
DEFAULT_KEEPALIVE_S = 30
DEFAULT_INFLIGHT = 32
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_RECONNECT_MIN_S = 1.0
DEFAULT_RECONNECT_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is; ``str()`` is the URL again (no credentials: safe to log)."""

    host: str
    port: int
    tls: bool

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    @property
    def is_loopback(self) -> bool:
        return _is_loopback(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_broker_url(url: str, *, allow_plaintext: bool = False) -> BrokerAddress:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]`` -> BrokerAddress.

    Raises UsageError (one line, never echoing credentials) for another scheme, a missing
    host, a bad port, credentials or a path in the URL, or plain ``mqtt://`` to a host that is
    not loopback unless ``allow_plaintext``.
    """
    # Before parsing: a password holding '/', '?' or '#' ends urlsplit's host part early, and
    # its first half would come back as "the port" in the parse error, echoed to the log.
    if "@" in url:
        raise UsageError(
            "broker URL: credentials do not belong in the URL; "
            "use uplink.username and uplink.password_env or password_file"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"broker URL: {exc} (expected mqtts://host:port)") from None
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "broker URL: credentials do not belong in the URL; "
            "use uplink.username and uplink.password_env or password_file"
        )
    scheme = parts.scheme.lower()
    shown = f"{scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")
    if scheme not in DEFAULT_PORTS:
        raise UsageError(
            f"broker URL {shown!r}: scheme must be mqtt:// or mqtts://, not {scheme or 'none'!r}"
        )
    if not parts.hostname:
        raise UsageError(f"broker URL {url.strip()!r}: no host (expected {scheme}://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"broker URL {shown!r}: unexpected path or query after host:port")
    if port == 0:
        raise UsageError(f"broker URL {shown!r}: port must be 1..65535")
    address = BrokerAddress(parts.hostname, port or DEFAULT_PORTS[scheme], scheme == "mqtts")
    if not address.tls and not address.is_loopback and not allow_plaintext:
        raise UsageError(
            f"broker URL {address}: plain MQTT to a non-loopback host sends everything in "
            "clear; use mqtts:// (or set uplink.tls.insecure_plaintext: true on a test bench)"
        )
    return address


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """CA bundle (None: the system's), client certificate and key (mutual TLS)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def context(self) -> ssl.SSLContext:
        """A verifying client context (hostname checked). Raises UsageError naming the file."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"uplink.tls.ca_file {self.ca_file}: cannot load: {_why(exc)}"
            ) from None
        if (self.cert_file is None) != (self.key_file is None):
            raise UsageError("uplink.tls: cert_file and key_file go together")
        if self.cert_file is not None:
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(
                    f"uplink.tls.cert_file {self.cert_file} / key_file {self.key_file}: "
                    f"cannot load: {_why(exc)}"
                ) from None
        return ctx


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


@dataclass(frozen=True, slots=True)
class UplinkSettings:
    """Everything the uplink needs, validated. ``password`` prints as ``***``."""

    broker: BrokerAddress
    site: str
    gateway: str
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    tls: TlsFiles = field(default_factory=TlsFiles)
    topic_root: str = DEFAULT_TOPIC_ROOT
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    inflight: int = DEFAULT_INFLIGHT
    encoding: Literal["json", "cbor"] = "json"
    telemetry_qos: Literal[0, 1] = 1
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    reconnect_min_s: float = DEFAULT_RECONNECT_MIN_S
    reconnect_max_s: float = DEFAULT_RECONNECT_MAX_S

    def __post_init__(self) -> None:
        if self.inflight < 1:
            raise UsageError(f"uplink.inflight: {self.inflight} must be at least 1")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise UsageError("uplink: reconnect delays must satisfy 0 < min <= max")
        if self.protocol not in ("5", "3.1.1"):
            raise UsageError(f"uplink.protocol: {self.protocol!r} is not 5 or 3.1.1")

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"{self.site}-{self.gateway}"

    @classmethod
    def from_config(
        cls, cfg: Any, *, mqtt_url: str | None = None, environ: dict[str, str] | None = None
    ) -> UplinkSettings | None:
        """From ``edge_agent.config.model.GatewayConfig``; ``mqtt_url`` is ``--mqtt``.

        Returns None when neither the config nor ``--mqtt`` names a broker (outbox only).
        Raises UsageError for a bad URL or an unreadable password source.
        """
        up = cfg.uplink
        url = mqtt_url if mqtt_url is not None else up.url
        if url is None:
            return None
        broker = parse_broker_url(url, allow_plaintext=up.tls.insecure_plaintext)
        password = resolve_secret(
            env=up.password_env, file=up.password_file, environ=environ, what="uplink password"
        )
        return cls(
            broker=broker,
            site=cfg.gateway.site,
            gateway=cfg.gateway.id,
            protocol="3.1.1" if str(up.protocol) == "3.1.1" else "5",
            client_id=up.client_id,
            username=up.username,
            password=password,
            tls=TlsFiles(up.tls.ca_file, up.tls.cert_file, up.tls.key_file),
            topic_root=up.topic_root,
            keepalive_s=up.keepalive_s,
            inflight=up.inflight,
            encoding=up.encoding,
        )
