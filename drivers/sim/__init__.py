"""Simulated Modbus buses for tests, benchmarks, ``edge-agent simulate`` and the demo.

``drivers.sim.server``: ``SimServer`` (several units behind one TCP / RTU / RTU-over-TCP
endpoint, silent for absent units, broadcasts on unit 0, write/read hooks, fault injection).
``drivers.sim.ptys``: ``PtyPair``, two linked serial ptys made by socat.
``drivers.sim.site_sim``: ``SiteSimulator``, every device of a site file with dynamics
(device models in ``drivers.sim.devices`` and ``drivers.sim.noise_logger``, time in
``drivers.sim.clock``), playing the site file's scenarios (``drivers.sim.scenarios``).
It may import the rest of ``drivers``, ``sitemodel``, ``dsp`` and ``yamlread``.
"""
