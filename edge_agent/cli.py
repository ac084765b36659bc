"""The one entry point, ``edge-agent``: a thin dispatcher over ``edge_agent.commands``.

Each command lives in its own module ``edge_agent/commands/<name>.py`` exposing
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported
only when their command is asked for, so ``edge-agent scan`` never pays for numba.

Exit codes: 0 success, 1 runtime failure, 2 usage or input error. Errors print one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from edge_agent.errors import EXIT_RUNTIME, EXIT_USAGE, EdgeAgentError

__all__ = ["COMMANDS", "main"]

# name -> (module, one-line summary). The summary is here, not in the module, so that
# `edge-agent --help` lists every command without importing any of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("edge_agent.commands.run", "run the gateway daemon (what systemd starts)"),
    "demo": ("edge_agent.commands.demo", "run the reference site end to end, no broker needed"),
    "simulate": ("edge_agent.commands.simulate", "serve a site's devices as Modbus simulators"),
    "check-config": ("edge_agent.commands.check_config", "validate a gateway config file"),
    "scan": ("edge_agent.commands.scan", "find responding Modbus units and name their profile"),
    "probe": ("edge_agent.commands.probe", "read one configured device once and print its points"),
    "analyze": ("edge_agent.commands.analyze", "leak analysis of noise recordings (WAV files)"),
    "locate": ("edge_agent.commands.locate", "locate a leak between two simultaneous recordings"),
    "coverage": ("edge_agent.commands.coverage", "listening coverage of a site's pipe network"),
    "status": ("edge_agent.commands.status", "show the running daemon's devices, outbox, uplink"),
    "config-schema": (
        "edge_agent.commands.config_schema",
        "print the JSON Schema of the gateway config (for editors)",
    ),
}

# The commands a user runs at a laptop that compile dsp kernels: their cache goes to the user's
# (edge_agent/kernel_cache.py). ``run`` and ``demo`` choose their own (the state directory, the
# repository); the others never compile, so they make no cache directory.
KERNEL_COMMANDS = frozenset({"analyze", "locate"})


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="edge-agent",
        description="Gateway daemon for noise loggers, level gauges and gas detectors.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 usage or input error.",
    )
    from edge_agent import __version__

    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, summary) in COMMANDS.items():
        if name != selected:
            sub.add_parser(name, help=summary, description=summary)
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(
            name,
            help=summary,
            description=getattr(module, "DESCRIPTION", summary),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _selected_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = _selected_command(args_list)
    if selected in KERNEL_COMMANDS:
        # before the command's module imports dsp: numba reads NUMBA_CACHE_DIR once
        from edge_agent.kernel_cache import ensure_numba_cache_dir, user_cache_base

        ensure_numba_cache_dir(user_cache_base())
    try:
        parser = _build_parser(selected)
    except ModuleNotFoundError as exc:
        if selected and exc.name and exc.name.startswith("edge_agent.commands"):
            print(f"edge-agent {selected}: not available in this build", file=sys.stderr)
            return EXIT_RUNTIME
        raise
    args = parser.parse_args(args_list)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except EdgeAgentError as exc:
        print(f"edge-agent {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``edge-agent coverage --json | head``): not a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUNTIME


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
