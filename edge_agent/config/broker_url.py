"""The broker URL rule, one for everybody: ``check-config`` (the config's ``uplink.url``) and
``run`` (that URL or ``--mqtt``) accept and refuse exactly the same URLs.

``mqtt://host[:port]`` or ``mqtts://host[:port]``, nothing else: no credentials (a URL ends
up in logs and ``status``), no path or query, a port in 1..65535, and plaintext ``mqtt://``
only to a loopback host unless ``uplink.tls.insecure_plaintext`` allows it (docs/mqtt.md).
A refused URL is never echoed whole: it may hold a password typed in the wrong place.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from edge_agent.errors import UsageError
from yamlread.problems import printable

__all__ = [
    "DEFAULT_PORTS",
    "LOOPBACK_NAMES",
    "BrokerAddress",
    "BrokerUrlError",
    "is_loopback_host",
    "parse_broker_url",
]

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# Host names that mean this machine (Debian's /etc/hosts names ::1 ip6-localhost and
# ip6-loopback); besides these, any IPv4 or IPv6 loopback address.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class BrokerUrlError(UsageError):
    """A broker URL the rule refuses; ``reason`` says why without the URL (the config shows
    it at ``uplink.url``), ``str()`` is ``broker URL: <reason>`` (for ``--mqtt``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"broker URL: {reason}")


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
        return is_loopback_host(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, without brackets) is this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_broker_url(url: str, *, allow_plaintext: bool = False) -> BrokerAddress:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]`` -> ``BrokerAddress``.

    Raises ``BrokerUrlError`` (a ``UsageError``, one line, never echoing the URL) for
    credentials, another scheme, no host, a path or query, a bad port, or plain ``mqtt://``
    to a host that is not loopback unless ``allow_plaintext``.
    """
    # Before parsing: a password holding '/', '?' or '#' ends urlsplit's host part early.
    if "@" in url:
        raise BrokerUrlError("credentials do not belong in the URL: use username and password_env")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BrokerUrlError("is not a valid URL (mqtts://host:port)") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise BrokerUrlError("the scheme must be mqtts:// (TLS) or mqtt://")
    if not parts.hostname:
        raise BrokerUrlError("names no host (mqtts://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError("must be just mqtts://host:port (no path or query)")
    if port == 0:
        raise BrokerUrlError("port 0 is not a broker port")
    address = BrokerAddress(
        parts.hostname, port or DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts"
    )
    if not address.tls and not address.is_loopback and not allow_plaintext:
        raise BrokerUrlError(
            f"plaintext mqtt:// to {printable(address.host)} (not loopback): use mqtts:// or set "
            "uplink.tls.insecure_plaintext: true"
        )
    return address
