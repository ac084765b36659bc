"""Uplink settings without a broker: URL parsing with one-line errors, TLS on by default off
loopback, secrets never shown, topic levels checked, backoff capped with jitter."""

import random
from dataclasses import dataclass, field

import pytest

from edge_agent.errors import UsageError
from edge_agent.events import Event, Severity
from edge_agent.uplink import (
    BrokerAddress,
    TlsFiles,
    Topics,
    UplinkSettings,
    backoff_delay,
    parse_broker_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", BrokerAddress("127.0.0.1", 1883, False)),
        ("mqtt://localhost:1884", BrokerAddress("localhost", 1884, False)),
        ("mqtt://[::1]:1999", BrokerAddress("::1", 1999, False)),
        ("mqtts://broker.example", BrokerAddress("broker.example", 8883, True)),
        ("MQTTS://broker.example:8884/", BrokerAddress("broker.example", 8884, True)),
        (" mqtts://10.0.0.5:8883 ", BrokerAddress("10.0.0.5", 8883, True)),
    ],
)
def test_good_urls(url, expected):
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://broker.example", "scheme must be mqtts:// (TLS) or mqtt://"),
        ("broker.example:1883", "scheme"),
        ("mqtts://", "no host"),
        ("mqtts://broker.example:99999", "port"),
        ("mqtts://broker.example:0", "port"),
        ("mqtts://broker.example:x", "port"),
        ("mqtts://broker.example/topic", "no path or query"),
        ("mqtt://broker.example", "(not loopback)"),
        ("mqtt://10.1.2.3:1883", "(not loopback)"),
    ],
)
def test_bad_urls_are_one_line_usage_errors(url, needle):
    with pytest.raises(UsageError) as err:
        parse_broker_url(url)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_plaintext_off_loopback_only_when_allowed():
    assert not parse_broker_url("mqtt://10.1.2.3", allow_plaintext=True).tls


def test_credentials_in_url_are_refused_without_echo():
    with pytest.raises(UsageError) as err:
        parse_broker_url("mqtts://gw:hunter2@broker.example")
    assert "hunter2" not in str(err.value)
    assert "username" in str(err.value)


def test_address_str_is_a_url_without_secrets():
    assert str(parse_broker_url("mqtts://b.example")) == "mqtts://b.example:8883"
    assert str(BrokerAddress("::1", 1883, False)) == "mqtt://[::1]:1883"


# A stand-in shaped like edge_agent.config.model.GatewayConfig (only the fields read).
@dataclass(frozen=True)
class _Tls:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_plaintext: bool = False


@dataclass(frozen=True)
class _Uplink:
    url: str | None = "mqtts://broker.example:8883"
    protocol: object = 5
    client_id: str | None = None
    username: str | None = "gw-01"
    password_env: str | None = "MQTT_PW"
    password_file: str | None = None
    tls: _Tls = field(default_factory=_Tls)
    topic_root: str = "lifeline/v1"
    keepalive_s: int = 30
    inflight: int = 32
    encoding: str = "json"


@dataclass(frozen=True)
class _Gw:
    site: str = "riverside"
    id: str = "gw-01"


@dataclass(frozen=True)
class _Cfg:
    uplink: _Uplink = field(default_factory=_Uplink)
    gateway: _Gw = field(default_factory=_Gw)


def test_from_config_resolves_password_and_hides_it():
    s = UplinkSettings.from_config(_Cfg(), environ={"MQTT_PW": "hunter2"})
    assert s.password.reveal() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    assert s.effective_client_id == "riverside-gw-01"
    assert s.broker.tls


def test_from_config_with_mqtt_override_and_none():
    cfg = _Cfg(uplink=_Uplink(url=None, password_env=None))
    assert UplinkSettings.from_config(cfg) is None
    s = UplinkSettings.from_config(cfg, mqtt_url="mqtt://127.0.0.1:1999")
    assert (s.broker.port, s.broker.tls) == (1999, False)


def test_from_config_missing_password_variable_is_one_line():
    with pytest.raises(UsageError) as err:
        UplinkSettings.from_config(_Cfg(), environ={})
    assert "MQTT_PW" in str(err.value)


def test_password_file(tmp_path):
    pw = tmp_path / "mqtt.secret"
    pw.write_text("s3cret\n")
    cfg = _Cfg(uplink=_Uplink(password_env=None, password_file=str(pw)))
    assert UplinkSettings.from_config(cfg).password.reveal() == "s3cret"


def test_unreadable_tls_files_name_the_file(tmp_path):
    with pytest.raises(UsageError) as err:
        TlsFiles(ca_file=str(tmp_path / "nope.crt")).context()
    assert "nope.crt" in str(err.value)
    with pytest.raises(UsageError):
        TlsFiles(cert_file=str(tmp_path / "c.crt")).context()


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "gw 1"])
def test_topic_levels_are_checked(bad):
    with pytest.raises(UsageError):
        Topics("lifeline/v1", "site", bad)
    with pytest.raises(UsageError):
        Topics("lifeline/v1", "site", "gw").event(bad)


def test_topic_tree():
    t = Topics("lifeline/v1", "riverside", "gw-01")
    assert t.state == "lifeline/v1/riverside/gw-01/state"
    assert t.device("nl-01") == "lifeline/v1/riverside/gw-01/devices/nl-01"
    ev = Event("gw-01", 1, "nl-01", "leak.suspected", Severity.NOTICE, 1.0, "{}")
    assert t.for_event(ev) == "lifeline/v1/riverside/gw-01/event/nl-01"
    tel = Event("gw-01", 1, "nl-01", "telemetry", Severity.INFO, 1.0, "{}", stream="telemetry")
    assert t.for_event(tel) == "lifeline/v1/riverside/gw-01/telemetry/nl-01"


def test_backoff_is_capped_jittered_and_never_zero():
    rng = random.Random(1)
    for attempt in range(40):
        cap = min(60.0, 1.0 * 2**attempt)
        delays = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jitter: a fleet does not reconnect in lockstep


@pytest.mark.parametrize(
    "kw", [{"inflight": 0}, {"reconnect_min_s": 0}, {"reconnect_min_s": 5, "reconnect_max_s": 1}]
)
def test_settings_refuse_nonsense(kw):
    with pytest.raises(UsageError):
        UplinkSettings(BrokerAddress("127.0.0.1", 1883, False), "s", "g", **kw)
