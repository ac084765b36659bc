"""Secrets never show: not in str/repr/format of the value, not in any error message, not in
check-config output, whichever way a person gets them wrong."""

import pickle

import pytest

from edge_agent.cli import main
from edge_agent.config import (
    ConfigError,
    Secret,
    load_config,
    parse_config,
    resolve_uplink_password,
)
from edge_agent.config.secrets import SecretError, resolve_secret
from tests.edge_agent.config.conftest import MINIMAL

PASSWORD = "s3cr3t-Hunter2-pa55"


class TestSecret:
    """The value type."""

    def test_masks_every_text_form(self):
        s = Secret(PASSWORD)
        for text in (
            str(s),
            repr(s),
            f"{s}",
            f"{s!r}",
            f"{s:>30}",
            "%s" % (s,),  # noqa: UP031  (old-style formatting too)
            str([s]),
            str({"p": s}),
        ):
            assert PASSWORD not in text
            assert "***" in text

    def test_reveal_gives_the_value(self):
        assert Secret(PASSWORD).reveal() == PASSWORD

    def test_equality_and_hash_do_not_leak(self):
        assert Secret("a") == Secret("a")
        assert Secret("a") != Secret("b")
        assert hash(Secret("a")) == hash(Secret("b"))

    def test_cannot_be_pickled(self):
        with pytest.raises(TypeError):
            pickle.dumps(Secret(PASSWORD))


class TestResolveSecret:
    """Where a secret comes from."""

    def test_from_environment(self):
        assert resolve_secret(env="PW", file=None, environ={"PW": PASSWORD}).reveal() == PASSWORD

    def test_from_file_drops_one_trailing_newline(self, tmp_path):
        f = tmp_path / "pw"
        f.write_text(PASSWORD + "\n")
        assert resolve_secret(env=None, file=str(f)).reveal() == PASSWORD

    def test_neither_is_none(self):
        assert resolve_secret(env=None, file=None) is None

    @pytest.mark.parametrize(
        ("env", "file", "environ", "expected"),
        [
            ("PW", None, {}, "environment variable PW is not set or empty"),
            ("PW", None, {"PW": ""}, "environment variable PW is not set or empty"),
            (None, "/nonexistent/pw", {}, "cannot read /nonexistent/pw: No such file or directory"),
            ("PW", "/x", {"PW": PASSWORD}, "give either password_env or password_file, not both"),
            (None, "a\x00b", {}, "cannot read 'a\\x00b': not a valid path"),
        ],
    )
    def test_errors_name_the_source_not_the_value(self, env, file, environ, expected):
        with pytest.raises(SecretError) as info:
            resolve_secret(env=env, file=file, environ=environ)
        assert str(info.value) == f"password: {expected}"
        assert PASSWORD not in str(info.value)


def _config(tmp_path, uplink: str):
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text() + uplink)
    return path


def test_resolve_uplink_password_points_at_the_config_line(tmp_path):
    cfg = load_config(_config(tmp_path, "uplink: {password_env: EA_TEST_PW}\n"))
    assert resolve_uplink_password(cfg, environ={"EA_TEST_PW": PASSWORD}).reveal() == PASSWORD
    with pytest.raises(ConfigError) as info:
        resolve_uplink_password(cfg, environ={})
    assert str(info.value) == (
        f"{tmp_path}/gateway.yaml:8:24: uplink.password_env: environment variable EA_TEST_PW "
        "is not set or empty"
    )


# Ways a person can put the password where it does not belong.
MISTAKES = [
    f"uplink: {{url: 'mqtts://gw:{PASSWORD}@broker.example:8883'}}\n",
    f"uplink: {{url: 'mqtt://gw:{PASSWORD}@broker.example'}}\n",
    f"uplink: {{password_env: '{PASSWORD}'}}\n",
    f"uplink: {{password_env: {{value: '{PASSWORD}'}}}}\n",
    f"uplink: {{password: '{PASSWORD}'}}\n",
    f"uplink: {{password_file: '{PASSWORD}'}}\n",
    f"uplink: {{password_env: 12345{PASSWORD}}}\n",
    f"uplink: {{password_env: *{PASSWORD}}}\n",
    f"uplink:\n  password_file: !secret {PASSWORD}\n",
    f"uplink:\n  password_env: [{PASSWORD}\n",
]


@pytest.mark.parametrize("mistake", MISTAKES)
def test_config_mistakes_never_echo_the_secret(tmp_path, capsys, mistake):
    path = _config(tmp_path, mistake)
    with pytest.raises(ConfigError) as info:
        parse_config(path.read_text(), file="gateway.yaml")
    assert PASSWORD not in str(info.value)
    for args in ([str(path)], ["--json", str(path)], ["--secrets", str(path)]):
        assert main(["check-config", *args]) == 2
        out, err = capsys.readouterr()
        assert PASSWORD not in out + err
        assert err or out


def test_check_config_secrets_flag_reads_without_printing(tmp_path, capsys, monkeypatch):
    path = _config(tmp_path, "uplink: {password_env: EA_TEST_PW}\n")
    monkeypatch.setenv("EA_TEST_PW", PASSWORD)
    assert main(["check-config", "--secrets", str(path)]) == 0
    monkeypatch.delenv("EA_TEST_PW")
    assert main(["check-config", "--secrets", str(path)]) == 2
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    assert "EA_TEST_PW is not set" in err


def test_config_repr_holds_no_secret(tmp_path, monkeypatch):
    secret_file = tmp_path / "mqtt.secret"
    secret_file.write_text(PASSWORD)
    cfg = load_config(_config(tmp_path, "uplink: {password_file: mqtt.secret}\n"))
    assert PASSWORD not in repr(cfg) + str(cfg)
    assert resolve_uplink_password(cfg).reveal() == PASSWORD
