"""The site model: what a city information model (CIM) platform knows about one district (the
pipe network, the devices placed on it with asset ids and coordinates, the loopback buses the
simulator serves them on), read from the site file. It may import ``dsp`` (pipe materials)
and ``yamlread``, never ``drivers`` or ``edge_agent``: both use it.

    site = load_site("seeds/site.yaml", profiles=registry)   # raises SiteError
"""

from sitemodel.checks import PLACEMENT_TOLERANCE_M
from sitemodel.geo import latlon_to_local, local_to_latlon
from sitemodel.load import load_site, parse_site
from sitemodel.network import (
    GAS_SITE_KIND_NAMES,
    GasSite,
    GasSiteKind,
    Manhole,
    PondingSpot,
    SewerNetwork,
    SewerReach,
    SewerSection,
    WetWell,
)
from sitemodel.params import (
    PARAMS_BY_KIND,
    CoverParams,
    DeviceParams,
    GasParams,
    LevelParams,
    NoiseLoggerParams,
    PressureParams,
    PumpControllerParams,
    RainParams,
)
from sitemodel.site import (
    DEVICE_KINDS,
    NAME_HELP,
    NAME_PATTERN,
    DeviceKind,
    Node,
    Origin,
    Pipe,
    ProfileCatalog,
    SimBus,
    Site,
    SiteDevice,
    SiteError,
)

__all__ = [
    "DEVICE_KINDS",
    "GAS_SITE_KIND_NAMES",
    "NAME_HELP",
    "NAME_PATTERN",
    "PARAMS_BY_KIND",
    "PLACEMENT_TOLERANCE_M",
    "CoverParams",
    "DeviceKind",
    "DeviceParams",
    "GasParams",
    "GasSite",
    "GasSiteKind",
    "LevelParams",
    "Manhole",
    "Node",
    "NoiseLoggerParams",
    "Origin",
    "Pipe",
    "PondingSpot",
    "PressureParams",
    "ProfileCatalog",
    "PumpControllerParams",
    "RainParams",
    "SewerNetwork",
    "SewerReach",
    "SewerSection",
    "SimBus",
    "Site",
    "SiteDevice",
    "SiteError",
    "WetWell",
    "latlon_to_local",
    "load_site",
    "local_to_latlon",
    "parse_site",
]
