"""One module per CLI command (see edge_agent.cli): its arguments, its help with examples and
``run(args) -> int``. A command may import anything of ours, lazily, so that a command that
needs no numba (``scan``, ``check-config``) never loads it."""
