"""Pure numerics for leak detection: spectra, features, leak decisions and tracking, pipe
propagation and listening radius, correlation, and synthesis of test signals.

No I/O; it imports nothing of ours (numpy, numba, rocket-fft only). Arrays in, small frozen
results out.
"""
