"""The daemon ``edge-agent run`` runs: what it loads (``loading``), what one config builds and a
SIGHUP replaces (``runtime``: bus runners, the ``pipeline`` into the outbox, the leak pipeline
with its ``recorder``, ``analysis``, ``schedule``, ``locate``), the order of things in ``app``,
its status file (``state``) and systemd glue (``systemd``, ``footprint``). It may import
anything of ours below the CLI: the rest of ``edge_agent``, ``drivers``, ``sitemodel``, ``dsp``.
"""
