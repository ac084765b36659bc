"""Device I/O: transports, Modbus read planning and decoding, device profiles, simulators.

``drivers`` knows buses, registers and device models; it knows nothing of events, rules or
MQTT. It may use ``dsp.synth`` (simulators only).
"""
