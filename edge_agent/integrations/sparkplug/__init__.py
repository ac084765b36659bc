"""Sparkplug B 3.0 (Eclipse Sparkplug): the gateway as an edge node, each field device a
Sparkplug device (docs/mqtt.md, Sparkplug B).

``sparkplug_b.proto`` is the official Eclipse Tahu definition, kept verbatim (EPL-2.0, its
header says so); ``sparkplug_b_pb2.py`` is generated from it (``make sparkplug-proto``) and
needs the protobuf runtime, which only ``payloads`` imports, and only the daemon's Sparkplug
edge node imports that: a gateway with Sparkplug off never loads protobuf. ``node`` builds the
messages (births, data by exception, deaths, seq and bdSeq), ``session`` is its MQTT session
(the NDEATH is its Will, so it cannot share the uplink's).
"""
