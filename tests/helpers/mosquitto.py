"""A real mosquitto for tests: started on a free loopback port, stopped, restarted, killed.

Tests (and the end-to-end suites) use it like this::

    with Mosquitto(tmp_path) as broker:                       # plain, anonymous
        ...broker.url  -> "mqtt://127.0.0.1:<port>"
    with Mosquitto(tmp_path, users={"gw": "s3cret"}) as broker:   # password file
    certs = make_certs(tmp_path / "pki")                      # CA, server and client certs
    with Mosquitto(tmp_path, tls=certs) as broker:            # mqtts, client cert required
        ...broker.url  -> "mqtts://127.0.0.1:<port>"

``restart()`` brings the broker back on the same port (a consumer or gateway reconnects there).
``Consumer`` is a paho subscriber that collects messages in a thread-safe list and can wait,
bounded, for a condition on what it has seen. pytest fixtures ``mosquitto`` and ``mqtt_certs``
at the end of this file can be imported into a test module or a conftest.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.helpers.net import free_port  # re-exported: tests import it from here

__all__ = [
    "Certs",
    "Consumer",
    "Message",
    "Mosquitto",
    "find_mosquitto",
    "free_port",
    "make_certs",
    "mosquitto",
    "mqtt_certs",
]

START_TIMEOUT_S = 15.0


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on PATH).

    Raises pytest's skip only when it is missing entirely, so CI (which installs it) never skips.
    """
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.skip("mosquitto is not installed (make test-deps installs it)")
    return found


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


@dataclass(frozen=True)
class Certs:
    """PEM files of a throwaway PKI: a CA, a broker cert for 127.0.0.1, a client cert and key,
    and an unrelated CA (``wrong_ca``) to prove a wrong CA is refused."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path


def make_certs(directory: Path, client_cn: str = "gw-01") -> Certs:
    """Generate the PKI with openssl (EC P-256: fast) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "wrong-ca"):
        _openssl(
            "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "2", "-subj", f"/CN=edge-agent test {name}", cwd=d,
        )  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", client_cn)):
        _openssl(
            "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={cn}", cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
            "-extfile", f"{name}.ext", cwd=d,
        )  # fmt: skip
    return Certs(
        ca=d / "ca.crt",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        client_cert=d / "client.crt",
        client_key=d / "client.key",
        wrong_ca=d / "wrong-ca.crt",
    )


class Mosquitto:
    """One mosquitto process on ``127.0.0.1:port``; context manager; ``stop`` is idempotent.

    ``users`` switches anonymous access off and writes a password file; ``acl`` is the text of
    a mosquitto ACL file (e.g. to make the broker refuse a topic); ``tls`` makes the
    listener TLS-only with ``require_certificate true``; ``persistence`` keeps retained
    messages and sessions across ``restart()``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: Certs | None = None,
        persistence: bool = False,
        acl: str | None = None,
        port: int | None = None,
    ) -> None:
        self.dir = Path(workdir) / f"mosquitto-{id(self):x}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = find_mosquitto()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.users = users
        self.tls = tls
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self.acl = acl
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_conf(persistence)

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_conf(self, persistence: bool) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            f"user {getpass.getuser()}",  # as root, mosquitto would otherwise drop to 'mosquitto'
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_inflight_messages 0",
            "max_queued_messages 0",  # never drop a queued QoS 1 message during a test
        ]
        if self.users:
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(pw), user, password],
                    check=True,
                    capture_output=True,
                )
            pw.chmod(0o600)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl_path = self.dir / "acl"
            acl_path.write_text(self.acl)
            acl_path.chmod(0o600)
            lines.append(f"acl_file {acl_path}")
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                "require_certificate true",
                "tls_version tlsv1.2",
            ]
            if not self.users:
                lines.append("use_identity_as_username true")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        """Start and wait (bounded) until the port accepts connections.

        Raises RuntimeError with the broker's log when it exits or never listens.
        """
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log_path.read_text()}")

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL after 5 s); no-op when not running."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing connections cleanly."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.stop()

    def restart(self) -> Mosquitto:
        """Stop and start again on the same port (waits until it accepts again)."""
        self.stop()
        return self.start()

    def client_tls_context(self, ca: Path | None = None) -> ssl.SSLContext | None:
        """An SSL context a test client uses against this broker (client cert included)."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(ca or self.tls.ca))
        ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return ctx

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Consumer:
    """A paho (v5) subscriber on its own network thread collecting every message it receives.

    ``clean_start=False`` with a fixed ``client_id`` and a session expiry keeps the consumer's
    QoS 1 queue on the broker while it is away (only meaningful with ``persistence``).
    """

    def __init__(
        self,
        broker: Mosquitto,
        topics: str | list[str] = "#",
        *,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        clean_start: bool = True,
    ) -> None:
        self.broker = broker
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        ctx = broker.client_tls_context()
        if ctx is not None:
            self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._clean_start = clean_start

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def start(self, timeout: float = 10.0) -> Consumer:
        """Connect, subscribe and wait (bounded) for the SUBACK. Raises TimeoutError."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if self._clean_start else 3600
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=self._clean_start,
            properties=props,
        )
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError("consumer did not get a SUBACK")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self, prefix: str = "") -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic.startswith(prefix)]

    def wait_for(
        self, predicate: Callable[[list[Message]], bool], timeout: float = 30.0
    ) -> list[Message]:
        """Block until ``predicate(messages)`` is true; raises TimeoutError with a count."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met; {len(self.messages)} messages seen")
                self._cond.wait(left)
            return list(self.messages)

    def __enter__(self) -> Consumer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def mosquitto(tmp_path):
    """A plain anonymous broker for one test."""
    with Mosquitto(tmp_path) as broker:
        yield broker


@pytest.fixture(scope="session")
def mqtt_certs(tmp_path_factory) -> Certs:
    """A test PKI, generated once per session."""
    return make_certs(tmp_path_factory.mktemp("pki"))
