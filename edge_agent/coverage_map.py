"""The coverage map an installer looks at: one self-contained SVG, no dependencies.

Drawn from the site's local x/y metres (north up), pipes as straight lines between their
nodes (a bent pipe longer than that line is drawn to scale along it):
- each pipe in its material's colour, thicker for larger diameters;
- beside it, a stripe in each logger's colour over the stretches that logger hears (one lane
  per logger on that pipe), so overlaps show where two loggers can correlate;
- red hatched bands over the gaps nobody hears;
- loggers as numbered dots with their names; a suspected leak's candidate stretch in magenta
  with its best point marked;
- a legend (materials, loggers with their heard length, gap, candidate) and a scale bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from dsp.network import CandidateStretch, Coverage, Listener, PipeNetwork, PipePosition, Stretch

__all__ = ["MATERIAL_COLOURS", "render_coverage_svg"]

MATERIAL_COLOURS: dict[str, str] = {
    "ductile_iron": "#1f4e9c",
    "cast_iron": "#4a4f57",
    "steel": "#117a8b",
    "asbestos_cement": "#8a5a19",
    "pvc": "#7b3fb5",
    "pe": "#e07a10",
}
FALLBACK_COLOUR = "#666666"
# Loggers' reach bands: distinct, none of them red (red means a gap) nor magenta (candidate).
LOGGER_COLOURS = (
    "#2ca02c",
    "#17becf",
    "#bcbd22",
    "#1f77b4",
    "#9467bd",
    "#8c564b",
    "#7f7f7f",
    "#e377c2",
    "#98df8a",
    "#aec7e8",
)
GAP_COLOUR = "#d62728"
CANDIDATE_COLOUR = "#d6009f"
MAP_WIDTH_PX = 900.0
MARGIN_PX = 60.0
LEGEND_WIDTH_PX = 320.0
BAND_WIDTH_PX = 18.0
# Each logger hearing a pipe gets its own lane beside it (alternating sides), so overlapping
# reach reads as parallel stripes rather than a muddy blend.
LANE_PX = 6.0


class _Frame:
    """Local metres -> SVG pixels (y flipped: north up)."""

    def __init__(self, network: PipeNetwork) -> None:
        xs = [n.x for n in network.nodes.values()] or [0.0]
        ys = [n.y for n in network.nodes.values()] or [0.0]
        self.x0, self.y1 = min(xs), max(ys)
        span = max(max(xs) - self.x0, max(ys) - min(ys), 1.0)
        self.scale = (MAP_WIDTH_PX - 2 * MARGIN_PX) / span
        self.height = (max(ys) - min(ys)) * self.scale + 2 * MARGIN_PX + 40.0

    def px(self, x: float, y: float) -> tuple[float, float]:
        return (MARGIN_PX + (x - self.x0) * self.scale, MARGIN_PX + 30 + (self.y1 - y) * self.scale)


def _point(network: PipeNetwork, frame: _Frame, segment: str, offset_m: float):
    seg = network.segments[segment]
    a, b = network.nodes[seg.start], network.nodes[seg.end]
    f = offset_m / seg.length_m
    return frame.px(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y))


def _normal(network: PipeNetwork, frame: _Frame, segment: str) -> tuple[float, float]:
    """Unit vector (pixels) perpendicular to a pipe as drawn."""
    seg = network.segments[segment]
    (x1, y1), (x2, y2) = (
        _point(network, frame, segment, 0.0),
        _point(network, frame, segment, seg.length_m),
    )
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    return (-(y2 - y1) / length, (x2 - x1) / length)


def _line(
    network, frame, s: Stretch, style: str, offset_px: float = 0.0, title: str | None = None
) -> str:
    (x1, y1), (x2, y2) = (
        _point(network, frame, s.segment, s.start_m),
        _point(network, frame, s.segment, s.end_m),
    )
    if offset_px:
        nx, ny = _normal(network, frame, s.segment)
        x1, y1, x2, y2 = (
            x1 + nx * offset_px,
            y1 + ny * offset_px,
            x2 + nx * offset_px,
            y2 + ny * offset_px,
        )
    attrs = f'x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}'
    if title is None:
        return f"<line {attrs}/>"
    # A tooltip in browsers: hover a stretch to read what it is.
    return f"<line {attrs}><title>{escape(title)}</title></line>"


def _pipe_width(diameter_mm: float | None) -> float:
    return 2.0 + 3.0 * math.sqrt((diameter_mm or 150.0) / 150.0)


def render_coverage_svg(
    network: PipeNetwork,
    listeners: Sequence[Listener],
    coverage: Coverage,
    *,
    title: str,
    candidate: CandidateStretch | None = None,
) -> str:
    """The whole map as an SVG document string."""
    frame = _Frame(network)
    width = MAP_WIDTH_PX + LEGEND_WIDTH_PX
    height = max(frame.height, 160.0 + 22.0 * (len(listeners) + len(MATERIAL_COLOURS) + 6))
    colour_of = {
        lst.name: LOGGER_COLOURS[i % len(LOGGER_COLOURS)] for i, lst in enumerate(listeners)
    }
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif">',
        "<defs>",
        '<pattern id="gap" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="8" height="8" fill="{GAP_COLOUR}" fill-opacity="0.25"/>'
        f'<line x1="0" y1="0" x2="0" y2="8" stroke="{GAP_COLOUR}" stroke-width="4"/></pattern>',
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{MARGIN_PX}" y="30" font-size="18" font-weight="bold">{escape(title)}</text>',
        f'<text x="{MARGIN_PX}" y="50" font-size="13" fill="#333">'
        f"{coverage.covered_fraction * 100:.1f} % of {coverage.total_length_m:.0f} m heard "
        f"(leak {coverage.model.leak_level_db:g} dB, heard {coverage.model.detect_margin_db:g} dB "
        "over the floor)</text>",
    ]
    # 1. reach bands per logger (under everything), 2. gaps, 3. pipes, 4. candidate, 5. loggers
    lanes: dict[str, list[str]] = {}
    for reach in coverage.reaches:
        for st in reach.stretches:
            lane_list = lanes.setdefault(st.segment, [])
            if reach.listener not in lane_list:
                lane_list.append(reach.listener)
    for reach in coverage.reaches:
        style = (
            f'stroke="{colour_of[reach.listener]}" stroke-opacity="0.85" '
            f'stroke-width="{LANE_PX:g}" stroke-linecap="butt"'
        )
        for st in reach.stretches:
            k = lanes[st.segment].index(reach.listener)
            offset = (k // 2 + 1) * LANE_PX * (1 if k % 2 == 0 else -1)
            tip = f"{reach.listener} hears {st.segment} {st.start_m:.0f}-{st.end_m:.0f} m"
            out.append(_line(network, frame, st, style, offset, title=tip))
    gap_style = f'stroke="url(#gap)" stroke-width="{BAND_WIDTH_PX}" stroke-linecap="butt"'
    out.extend(
        _line(
            network,
            frame,
            s,
            gap_style,
            title=f"gap on {s.segment}: {s.start_m:.0f}-{s.end_m:.0f} m ({s.length_m:.0f} m)",
        )
        for s in coverage.uncovered
    )
    for seg in network.segments.values():
        colour = MATERIAL_COLOURS.get(seg.material, FALLBACK_COLOUR)
        whole = Stretch(seg.id, 0.0, seg.length_m)
        style = (
            f'stroke="{colour}" stroke-width="{_pipe_width(seg.diameter_mm):.1f}" '
            'stroke-linecap="round"'
        )
        dn = f" DN{seg.diameter_mm:g}" if seg.diameter_mm else ""
        tip = f"{seg.id}: {seg.material}{dn}, {seg.length_m:g} m"
        out.append(_line(network, frame, whole, style, title=tip))
        # Label where it collides least with the loggers on this pipe.
        on_pipe = [
            lst.position.offset_m / seg.length_m
            for lst in listeners
            if lst.position.segment == seg.id
        ]
        frac = max((0.3, 0.5, 0.7), key=lambda f: min((abs(f - o) for o in on_pipe), default=1))
        mx, my = _point(network, frame, seg.id, seg.length_m * frac)
        nx, ny = _normal(network, frame, seg.id)
        away = (len(lanes.get(seg.id, ())) // 2 + 2) * LANE_PX + 8
        out.append(
            f'<text x="{mx - nx * away:.1f}" y="{my - ny * away + 4:.1f}" font-size="11" '
            f'text-anchor="middle" fill="{colour}" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{escape(seg.id)} {seg.length_m:.0f} m</text>'
        )
    for node in network.nodes.values():
        x, y = frame.px(node.x, node.y)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#222"/>')
    if candidate is not None:
        style = f'stroke="{CANDIDATE_COLOUR}" stroke-width="7" stroke-linecap="round"'
        out.extend(_line(network, frame, s, style) for s in candidate.stretches)
        out.append(_leak_marker(network, frame, candidate.best))
    for i, lst in enumerate(listeners, start=1):
        x, y = _point(network, frame, lst.position.segment, lst.position.offset_m)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="{colour_of[lst.name]}" '
            'stroke="#000" stroke-width="1.5"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="10" font-weight="bold" '
            f'text-anchor="middle" fill="#000">{i}</text>'
        )
        out.append(
            f'<text x="{x + 11:.1f}" y="{y + 20:.1f}" font-size="12" font-weight="bold" '
            f'fill="#000" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{escape(lst.name)}</text>"
        )
    for node in network.nodes.values():
        x, y = frame.px(node.x, node.y)
        out.append(
            f'<text x="{x - 7:.1f}" y="{y - 7:.1f}" font-size="10" text-anchor="end" '
            f'fill="#444" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{escape(node.id)}</text>"
        )
    out.extend(_scale_bar(frame))
    out.extend(_legend(network, listeners, coverage, colour_of, candidate))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _leak_marker(network: PipeNetwork, frame: _Frame, pos: PipePosition) -> str:
    x, y = _point(network, frame, pos.segment, pos.offset_m)
    return (
        f'<g stroke="{CANDIDATE_COLOUR}" stroke-width="3"><line x1="{x - 8:.1f}" y1="{y - 8:.1f}" '
        f'x2="{x + 8:.1f}" y2="{y + 8:.1f}"/><line x1="{x - 8:.1f}" y1="{y + 8:.1f}" '
        f'x2="{x + 8:.1f}" y2="{y - 8:.1f}"/></g>'
    )


def _scale_bar(frame: _Frame) -> list[str]:
    # A round length near 120 px.
    target = 120.0 / frame.scale
    length = min(
        (m for m in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000) if m >= target),
        default=10000,
    )
    px = length * frame.scale
    x, y = MARGIN_PX, frame.height - 12
    return [
        f'<line x1="{x}" y1="{y}" x2="{x + px:.1f}" y2="{y}" stroke="#000" stroke-width="3"/>',
        f'<line x1="{x}" y1="{y - 5}" x2="{x}" y2="{y + 5}" stroke="#000" stroke-width="2"/>',
        f'<line x1="{x + px:.1f}" y1="{y - 5}" x2="{x + px:.1f}" y2="{y + 5}" stroke="#000" '
        'stroke-width="2"/>',
        f'<text x="{x + px + 8:.1f}" y="{y + 4}" font-size="12">{length} m (north up)</text>',
    ]


def _legend(network, listeners, coverage, colour_of, candidate) -> list[str]:
    x = MAP_WIDTH_PX + 10
    y = 40.0
    out = [f'<text x="{x}" y="{y}" font-size="14" font-weight="bold">Pipes</text>']
    used: dict[str, set[float]] = {}
    for seg in network.segments.values():
        used.setdefault(seg.material, set()).add(seg.diameter_mm)
    for material, diameters in sorted(used.items()):
        y += 22
        colour = MATERIAL_COLOURS.get(material, FALLBACK_COLOUR)
        dn = ", ".join(f"DN{d:g}" for d in sorted(d for d in diameters if d)) or ""
        out.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 30}" y2="{y - 4}" stroke="{colour}" '
            'stroke-width="5"/>'
        )
        out.append(
            f'<text x="{x + 38}" y="{y}" font-size="12">{escape(material)} {escape(dn)}</text>'
        )
    y += 34
    out.append(f'<text x="{x}" y="{y}" font-size="14" font-weight="bold">Loggers (heard)</text>')
    for i, reach in enumerate(coverage.reaches, start=1):
        y += 22
        colour = colour_of[reach.listener]
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="30" height="6" fill="{colour}" fill-opacity="0.85"/>'
        )
        out.append(f'<circle cx="{x + 15}" cy="{y - 6}" r="6" fill="{colour}" stroke="#000"/>')
        out.append(
            f'<text x="{x + 38}" y="{y}" font-size="12">{i} {escape(reach.listener)}: '
            f"{reach.heard_length_m:.0f} m heard, {reach.own_pipe_reach_m:.0f} m each way</text>"
        )
    y += 34
    out.append(
        f'<rect x="{x}" y="{y - 12}" width="30" height="14" fill="url(#gap)"/>'
        f'<text x="{x + 38}" y="{y}" font-size="12">gap: no logger hears a leak here</text>'
    )
    gap_m = sum(s.length_m for s in coverage.uncovered)
    y += 18
    out.append(
        f'<text x="{x + 38}" y="{y}" font-size="12" fill="#555">{gap_m:.0f} m in '
        f"{len(coverage.uncovered)} stretch(es)</text>"
    )
    if candidate is not None:
        y += 26
        out.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 30}" y2="{y - 4}" stroke="{CANDIDATE_COLOUR}" '
            'stroke-width="7"/>'
            f'<text x="{x + 38}" y="{y}" font-size="12">suspected leak: candidate stretch</text>'
        )
        y += 18
        best = candidate.best
        out.append(
            f'<text x="{x + 38}" y="{y}" font-size="12" fill="#555">best fit {escape(best.segment)}'
            f" at {best.offset_m:.0f} m (x)</text>"
        )
    return out
