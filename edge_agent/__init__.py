"""edge-agent: the gateway daemon for underground lifelines.

The daemon, the CLI and the MQTT contract. Layers (imports point down only): ``edge_agent``
may import ``drivers``, ``sitemodel``, ``dsp`` and ``yamlread``; ``drivers`` -> ``sitemodel``
-> ``dsp``, ``yamlread``; ``dsp`` and ``yamlread`` import nothing of ours (tests/test_imports.py
holds every package to it).
"""

__version__ = "0.1.0"
