"""A small site file of our own for the coverage/locate/site_network tests, so that they do not
move when the seed site is tuned: the riverside network shape with loggers at fixed spots."""

from pathlib import Path

from sitemodel import local_to_latlon

ORIGIN = (31.23, 121.47)
NODES = {"J1": (0, 0), "J2": (180, 0), "J3": (360, 0), "J4": (540, 0), "J5": (180, 160),
         "J6": (360, 170), "S1": (180, 225), "S2": (425, 170)}  # fmt: skip
PIPES = [
    ("P-01", "J1", "J2", "ductile_iron", 300, 7.2, 180),
    ("P-02", "J2", "J3", "ductile_iron", 300, 7.2, 180),
    ("P-03", "J3", "J4", "ductile_iron", 300, 7.2, 180),
    ("P-04", "J2", "J5", "cast_iron", 150, 9.0, 160),
    ("P-05", "J3", "J6", "cast_iron", 150, 9.0, 170),
    ("P-06", "J5", "J6", "cast_iron", 150, 9.0, 182),
    ("P-07", "J5", "S1", "pe", 63, 5.8, 66),
    ("P-08", "J6", "S2", "pe", 63, 5.8, 66),
]
LOGGERS = [
    ("nl-01", "P-01", 25),
    ("nl-02", "P-02", 12),
    ("nl-03", "P-02", 168),
    ("nl-04", "P-04", 90),
    ("nl-05", "P-05", 110),
    ("nl-06", "P-06", 95),
    ("nl-07", "P-07", 40),
    ("nl-08", "P-03", 150),
]


def site_yaml() -> str:
    lines = [
        "site: mini",
        "name: Mini riverside",
        f"origin: {{lat: {ORIGIN[0]}, lon: {ORIGIN[1]}}}",
        "noise_floor_db: 0.0",
        "nodes:",
    ]
    lines += [f"  - {{id: {n}, x: {x}, y: {y}}}" for n, (x, y) in NODES.items()]
    lines.append("pipes:")
    for pid, a, b, material, d, e, length in PIPES:
        lines.append(
            f"  - {{id: {pid}, from: {a}, to: {b}, material: {material}, diameter_mm: {d}, "
            f"wall_mm: {e}, length_m: {length}}}"
        )
    lines.append("devices:")
    pipes = {p[0]: p for p in PIPES}
    for unit, (name, pid, offset) in enumerate(LOGGERS, start=1):
        _, a, b, *_rest, length = pipes[pid]
        (xa, ya), (xb, yb) = NODES[a], NODES[b]
        f = offset / length
        lat, lon = local_to_latlon(*ORIGIN, xa + f * (xb - xa), ya + f * (yb - ya))
        lines.append(
            f"  - {{name: {name}, kind: noise_logger, profile: noise-logger-nl200, "
            f"asset_id: A-{unit}, lat: {lat:.7f}, lon: {lon:.7f}, pipe: {pid}, "
            f"offset_m: {offset}, bus: water, unit_id: {unit}}}"
        )
    lines += ["sim_buses:", "  - {name: water, port: 15020}"]
    return "\n".join(lines) + "\n"


def write_site(directory: Path) -> Path:
    path = directory / "mini-site.yaml"
    path.write_text(site_yaml())
    return path
