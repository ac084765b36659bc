"""What integrators get besides the event stream, on the uplink's connection: the retained
current state per device (metadata, availability, active alarms, latest values), Home
Assistant MQTT discovery, safe commands and a Sparkplug B edge node (docs/mqtt.md).

``catalog`` (what each device is), ``state`` (its current state as retained messages),
``homeassistant`` (discovery configs), ``commands`` (the three safe verbs), ``sparkplug``
(Sparkplug B 3.0, its protobuf loaded only when it is on) and ``hub`` (``Integrations``: the
uplink's ``Derived``, fed by the daemon). Import the modules themselves: this package imports
nothing, so a gateway with every integration off loads none of them but the hub.
"""
