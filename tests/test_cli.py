"""The dispatcher: help lists every command, usage errors are one line and exit 2."""

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
