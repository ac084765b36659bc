"""Device I/O: transports, Modbus read planning and decoding, device profiles, simulators.

``drivers`` knows buses, registers and device models; it knows nothing of events, rules or
MQTT. It may import ``sitemodel`` (device kinds; the site its simulators serve), ``dsp`` (pipe
physics and signal synthesis, for the simulators) and ``yamlread`` (profile files), never
``edge_agent``.
"""
