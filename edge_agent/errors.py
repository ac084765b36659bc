"""The exception root of the daemon package and the exit codes the CLI maps them to.

A command never shows a traceback for a user mistake: it raises ``UsageError`` (bad input:
config, files, arguments -> exit 2) or ``RuntimeFailure`` (the world failed: port missing,
broker unreachable -> exit 1) with a one-line message naming what and where.
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "EdgeAgentError",
    "RuntimeFailure",
    "UsageError",
]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


class EdgeAgentError(Exception):
    """Root of every error edge_agent raises on purpose."""

    exit_code = EXIT_RUNTIME


class UsageError(EdgeAgentError):
    """Bad input from a person: config, file, argument. One line, exit 2."""

    exit_code = EXIT_USAGE


class RuntimeFailure(EdgeAgentError):
    """The environment failed (port, broker, disk). One line, exit 1."""

    exit_code = EXIT_RUNTIME
