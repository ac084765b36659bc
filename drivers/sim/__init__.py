"""Simulated Modbus buses for tests, benchmarks, ``edge-agent simulate`` and the demo.

``drivers.sim.server``: ``SimServer`` (several units behind one TCP / RTU / RTU-over-TCP
endpoint, silent for absent units, broadcasts on unit 0, write hooks, fault injection).
``drivers.sim.ptys``: ``PtyPair``, two linked serial ptys made by socat.
"""
