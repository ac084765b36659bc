"""Uplink settings: one frozen object with everything the MQTT client needs, adapted from the
config (``from_config``), the broker address parsed by the config's one broker URL rule
(``edge_agent.config.broker_url``: the same for ``check-config`` and ``run``).

Security defaults (docs/mqtt.md): TLS unless the broker is on loopback. ``mqtt://`` to any
other host is refused unless ``uplink.tls.insecure_plaintext`` is set. Credentials never go in a
URL (a URL ends up in logs and ``status``); the password is a ``Secret`` that prints ``***``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_agent.config.broker_url import DEFAULT_PORTS, BrokerAddress, parse_broker_url
from edge_agent.config.secrets import Secret, resolve_secret
from edge_agent.errors import UsageError

__all__ = [
    "DEFAULT_PORTS",
    "BrokerAddress",
    "TlsFiles",
    "UplinkSettings",
    "parse_broker_url",
]

DEFAULT_TOPIC_ROOT = "lifeline/v1"
DEFAULT_KEEPALIVE_S = 30
DEFAULT_INFLIGHT = 32
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_RECONNECT_MIN_S = 1.0
DEFAULT_RECONNECT_MAX_S = 60.0


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
