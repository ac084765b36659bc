"""The dispatcher: help lists every command, usage errors are one line and exit 2."""

import os
import subprocess
import sys

from edge_agent.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_a_closed_pipe_is_not_a_traceback():
    # ``edge-agent config-schema | head -1``: the reader is gone before the command writes.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", "config-schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_every_command_help_teaches_with_an_example():
    for name in COMMANDS:
        proc = subprocess.run(
            [sys.executable, "-m", "edge_agent", name, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, name
        assert f"edge-agent {name} " in proc.stdout.split("options:")[0], name
