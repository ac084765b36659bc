"""edge-agent: the gateway daemon for underground lifelines.

Layers (imports point down only): ``edge_agent`` -> ``drivers``, ``dsp``; ``drivers`` may use
``dsp.synth`` for simulators; ``dsp`` imports nothing of ours.
"""

__version__ = "0.1.0"
