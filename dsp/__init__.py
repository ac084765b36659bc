"""Pure numerics for leak detection: spectra, features, leak decisions and tracking, pipe
propagation and listening radius, correlation, and synthesis of test signals.

No I/O, no import of edge_agent or drivers. Arrays in, small frozen results out.
"""
