"""The site model: what a city information model (CIM) platform knows about one district (the
pipe network, the devices placed on it with asset ids and coordinates, the loopback buses the
simulator serves them on), read from the site file. It may import ``dsp`` (pipe materials)
and ``yamlread``, never ``drivers`` or ``edge_agent``: both use it.

    site = load_site("seeds/site.yaml", profiles=registry)   # raises SiteError
"""

from sitemodel.site import (
    DEVICE_KINDS,
    PARAMS_BY_KIND,
    PLACEMENT_TOLERANCE_M,
    BlockageScenario,
    CoverParams,
    CoverScenario,
    DropoutScenario,
    FaultScenario,
    GasParams,
    GasScenario,
    LeakScenario,
    LevelParams,
    Node,
    NoiseLoggerParams,
    Pipe,
    PressureParams,
    PumpControllerParams,
    RainParams,
    Scenarios,
    SimBus,
    Site,
    SiteDevice,
    SiteError,
    StormScenario,
    latlon_to_local,
    load_site,
    local_to_latlon,
    parse_site,
)

__all__ = [
    "DEVICE_KINDS",
    "PARAMS_BY_KIND",
    "PLACEMENT_TOLERANCE_M",
    "BlockageScenario",
    "CoverParams",
    "CoverScenario",
    "DropoutScenario",
    "FaultScenario",
    "GasParams",
    "GasScenario",
    "LeakScenario",
    "LevelParams",
    "Node",
    "NoiseLoggerParams",
    "Pipe",
    "PressureParams",
    "PumpControllerParams",
    "RainParams",
    "Scenarios",
    "SimBus",
    "Site",
    "SiteDevice",
    "SiteError",
    "StormScenario",
    "latlon_to_local",
    "load_site",
    "local_to_latlon",
    "parse_site",
]
