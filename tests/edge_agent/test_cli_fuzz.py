"""Property tests: random argument lists for every command, through ``edge_agent.cli.main``
in-process. Whatever the arguments, the answer is exit 0, 1 or 2, never an uncaught exception
or a traceback; a failure says something; an argparse mistake is one stderr line.

Arguments are drawn per command from its real options paired with hostile values (numbers out
of range, NaN, empty strings, a directory for a file, a file of random bytes, a device file),
plus stray tokens. Network stays on loopback: ``scan --host`` is only ever 127.0.0.1 with a
port nobody listens on, ``probe``'s config points at one too, and no URL the uplink would dial
is valid. ``run``, ``demo`` and ``simulate`` run until stopped when given good arguments, so
they get only arguments that fail before anything starts (a table at the end).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.wavfile import write_wav
from tests.helpers.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "seeds" / "site.yaml"
TRACEBACK = re.compile(r"^(Traceback|\s+File \"|\w+(Error|Exception): )", re.MULTILINE)

fuzz_settings = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Sandbox:
    """A directory of the things an installer might point a command at, made once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.closed_port = str(free_port())
        self.garbage = root / "garbage.bin"
        self.garbage.write_bytes(bytes(np.random.default_rng(7).integers(0, 256, 600, np.uint8)))
        self.missing = root / "missing" / "nothing.yaml"
        self.gateway = root / "gateway.yaml"
        self.gateway.write_text(
            "version: 1\ngateway: {site: riverside, id: gw-01}\n"
            f"buses:\n  - {{name: b1, type: tcp, host: 127.0.0.1, port: {self.closed_port},"
            " timeout_s: 0.1, retries: 0}\n"
            "devices:\n  - {name: lv-01, bus: b1, unit_id: 2, profile: level-radar-lr10}\n"
            f"storage: {{state_dir: {root / 'state'}}}\n"
        )
        self.bad_gateway = root / "bad.yaml"
        self.bad_gateway.write_text("version: 1\ngateway: {site: a/b, id: '#'}\nbuses: 3\n")
        self.wav = root / "good.wav"
        t = np.arange(4096 * 2) / 4096
        write_wav(self.wav, 0.1 * np.sin(2 * np.pi * 440 * t), 4096)
        self.state = root / "state-garbage"
        self.state.mkdir()
        (self.state / "status.json").write_text('{"site": 1, "pid": "x"}')
        self.svg = root / "out.svg"
        # A copy: a fuzzed `coverage --svg SITE` writes its map over whatever path it is given
        # (it overwrote the repository's seed site once).
        self.site = root / "site.yaml"
        shutil.copyfile(SEED, self.site)

    def paths(self) -> list[str]:
        return [
            str(p) for p in (self.garbage, self.missing, self.root, self.gateway, self.bad_gateway)
        ] + [str(self.wav), str(self.state), "/dev/null", str(self.site), str(self.svg)]


_SANDBOX_DIR = tempfile.TemporaryDirectory(prefix="cli-fuzz-")
BOX = Sandbox(Path(_SANDBOX_DIR.name))

JUNK = [
    "", " ", "\t", "0", "-1", "1", "2", "300", "1e309", "nan", "inf", "-inf", "1.5", "abc",
    "1-3", "3-1", "1-300", "0-0", ",", "1,,2", "N", "X", "é", "--", "-", "=", "%s", "{}",
    "9" * 30, "lv-01", "nl-01", "a=b", "nl-01=12", "=5", "pe", "cast_iron",
]  # fmt: skip
VALUES = st.sampled_from(JUNK + BOX.paths())
URLS = st.sampled_from(
    [
        "",
        "mqtt://broker.invalid",  # refused: plaintext off loopback, before any lookup
        "mqtts://user:pw@broker.invalid",
        "http://127.0.0.1:1",
        "mqtt://127.0.0.1:0",
        "mqtt://[::1",
        "mqtts://127.0.0.1:99999",
    ]
)
FLAG = None

OPTIONS: dict[str, dict[str, st.SearchStrategy[str] | None]] = {
    "check-config": {"--json": FLAG, "--secrets": FLAG},
    "config-schema": {"--compact": FLAG},
    "status": {"--state-dir": VALUES, "--config": VALUES, "--json": FLAG},
    "scan": {
        "--host": st.just("127.0.0.1"),
        "--serial": st.sampled_from(["/dev/null", str(BOX.garbage), str(BOX.missing), ""]),
        "--tcp-port": st.sampled_from([BOX.closed_port, "0", "-1", "70000", "abc", "1e3"]),
        "--ids": st.sampled_from(["1-3", "2", "0", "248", "3-1", "1,,2", "x", "", "1-5,7"]),
        "--baud": st.sampled_from(["9600", "0", "-1", "abc", "9600,19200", "", "1e9"]),
        "--parity": VALUES,
        "--stopbits": VALUES,
        "--timeout": st.sampled_from(["0.05", "0", "-1", "nan", "inf", "abc"]),
        "--workers": st.sampled_from(["1", "0", "-3", "100000", "abc"]),
        "--profiles-dir": VALUES,
        "--rtu-over-tcp": FLAG,
        "--json": FLAG,
    },
    "probe": {
        "--config": VALUES,
        "--raw": st.tuples(VALUES, VALUES).map(" ".join),
        "--function": st.sampled_from(["holding", "input", "coil", ""]),
        "--json": FLAG,
    },
    "analyze": {
        "--material": VALUES,
        "--scale": VALUES,
        "--floor-db": VALUES,
        "--threshold": VALUES,
        "--json": FLAG,
    },
    "locate": {
        "--spacing-m": VALUES,
        "--material": VALUES,
        "--wave-speed": VALUES,
        "--diameter-mm": VALUES,
        "--wall-mm": VALUES,
        "--site": VALUES,
        "--loggers": st.tuples(VALUES, VALUES).map(" ".join),
        "--weighting": st.sampled_from(["phat", "scot", "none", "x"]),
        "--band-hz": st.tuples(VALUES, VALUES).map(" ".join),
        "--json": FLAG,
    },
    "coverage": {
        "--site": VALUES,
        "--svg": VALUES,
        "--leak-db": VALUES,
        "--margin-db": VALUES,
        "--junction-loss-db": VALUES,
        "--heard": VALUES,
        "--json": FLAG,
    },
}


# Arguments that work, so that most examples get past argparse into the command itself.
BASES = {
    "analyze": [str(BOX.wav)],
    "check-config": [str(BOX.gateway)],
    "config-schema": [],
    "coverage": ["--site", str(BOX.site)],
    "locate": ["--spacing-m", "100", str(BOX.wav), str(BOX.wav)],
    "probe": ["--config", str(BOX.gateway), "lv-01"],
    "scan": ["--host", "127.0.0.1", "--tcp-port", BOX.closed_port, "--ids", "1-3"],
    "status": ["--state-dir", str(BOX.state)],
}


@st.composite
def argvs(draw, command: str) -> list[str]:
    options = OPTIONS[command]
    argv = [command] + (BASES[command] if draw(st.integers(0, 3)) else [])
    pieces = st.one_of(
        st.sampled_from(sorted(options)),
        st.sampled_from(sorted(options)),  # options twice as often as stray tokens
        VALUES.map(lambda v: "\0" + v),
    )
    for piece in draw(st.lists(pieces, max_size=4)):
        if piece.startswith("\0"):
            argv.append(piece[1:])  # a stray token (a positional, or a mistake)
            continue
        argv.append(piece)
        value = options[piece]
        if value is not None:
            # "--raw A B" style options take two values
            argv.extend(draw(value).split(" ") if piece in ("--raw", "--loggers", "--band-hz")
                        else [draw(value)])  # fmt: skip
    if draw(st.integers(0, 30)) == 0:
        argv.append(draw(st.sampled_from(["-h", "--help"])))
    return argv


@contextlib.contextmanager
def _in_sandbox() -> Iterator[None]:
    old = os.getcwd()
    os.chdir(BOX.root)  # anything written to a relative path lands in the sandbox
    try:
        yield
    finally:
        os.chdir(old)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr captured; argparse's SystemExit becomes the exit code."""
    out, err = io.StringIO(), io.StringIO()
    with _in_sandbox(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def assert_clean(argv: list[str], rc: int, out: str, err: str) -> None:
    assert rc in (0, 1, 2), (argv, rc, err)
    assert not TRACEBACK.search(err), (argv, err)
    if rc != 0:
        assert (err + out).strip(), f"{argv}: exit {rc} without a word"
    if ": error: " in err:  # argparse: one line, pointing at --help
        assert len(err.splitlines()) == 1 and "--help" in err, (argv, err)
    for line in err.splitlines():
        assert line.strip(), (argv, err)


@pytest.mark.parametrize("command", sorted(OPTIONS))
@fuzz_settings
@given(data=st.data())
def test_random_arguments_are_answered_cleanly(command, data):
    argv = data.draw(argvs(command), label="argv")
    rc, out, err = run_cli(argv)
    assert_clean(argv, rc, out, err)
    event(f"exit {rc}" + (" (argparse)" if ": error: " in err else ""))


# Long-running commands: arguments that must fail before anything starts.
FAIL_FAST = [
    ["run"],
    ["run", "--config"],
    ["run", "--config", str(BOX.missing)],
    ["run", "--config", str(BOX.garbage)],
    ["run", "--config", str(BOX.root)],
    ["run", "--config", str(BOX.bad_gateway)],
    ["run", "--config", "/dev/null"],
    ["run", "--config", str(BOX.gateway), "--mqtt", "mqtt://broker.invalid"],
    ["run", "--config", str(BOX.gateway), "--mqtt", "ftp://127.0.0.1"],
    ["run", "--config", str(BOX.gateway), "--mqtt", "mqtts://u:p@127.0.0.1"],
    ["run", "--config", str(BOX.gateway), "--mqtt", "mqtt://127.0.0.1:99999"],
    ["run", "--config", str(BOX.gateway), "--bogus"],
    ["demo", "--bogus"],
    ["demo", "--duration", "abc"],
    ["demo", "--duration", "-5"],
    ["demo", "--site", str(BOX.missing)],
    ["demo", "--site", str(BOX.garbage)],
    ["demo", "--mqtt", "mqtt://broker.invalid"],
    ["simulate"],
    ["simulate", "--site", str(BOX.missing)],
    ["simulate", "--site", str(BOX.garbage)],
    ["simulate", "--site", str(BOX.root)],
    ["simulate", "--site", str(BOX.site), "--speed", "abc"],
    ["simulate", "--site", str(BOX.site), "--speed", "-1"],
    ["simulate", "--site", str(BOX.site), "--transport", "carrier-pigeon"],
    ["simulate", "--site", str(BOX.site), "--port-base", "70000"],
    ["simulate", "--site", str(BOX.site), "--for", "nan"],
    ["nonsense"],
    ["--bogus"],
    [""],
]


@pytest.mark.parametrize("argv", FAIL_FAST, ids=lambda a: " ".join(a)[:60] or "empty")
def test_long_running_commands_refuse_bad_arguments_at_once(argv):
    rc, out, err = run_cli(argv)
    assert_clean(argv, rc, out, err)
    assert rc == 2, (argv, rc, out, err)
