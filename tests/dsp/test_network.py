"""Pipe graph: paths along pipes, reach, coverage, neighbours and leak candidate stretches."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.network import (
    Listener,
    NetworkError,
    NetworkNode,
    PipeNetwork,
    PipePosition,
    PipeSegment,
    ReachModel,
)
from dsp.pipes import listening_attenuation_db_per_m, wave_speed


def line_network(*specs: tuple[str, float]) -> PipeNetwork:
    """Pipes S1..Sn end to end: N0 -S1- N1 -S2- N2 ..., each (material, length)."""
    nodes = [NetworkNode(f"N{i}", 0.0, 0.0) for i in range(len(specs) + 1)]
    x = 0.0
    segs = []
    for i, (material, length) in enumerate(specs, start=1):
        segs.append(PipeSegment(f"S{i}", f"N{i - 1}", f"N{i}", material, length))
        x += length
    return PipeNetwork(nodes, segs)


def loop_network() -> PipeNetwork:
    """A square loop A-B-C-D-A of 100 m ductile iron sides plus a 50 m PE spur C-E."""
    nodes = [
        NetworkNode(n, x, y)
        for n, x, y in (("A", 0, 0), ("B", 100, 0), ("C", 100, 100), ("D", 0, 100), ("E", 150, 100))
    ]
    segs = [
        PipeSegment("AB", "A", "B", "ductile_iron", 100.0),
        PipeSegment("BC", "B", "C", "ductile_iron", 100.0),
        PipeSegment("CD", "C", "D", "ductile_iron", 100.0),
        PipeSegment("DA", "D", "A", "ductile_iron", 100.0),
        PipeSegment("CE", "C", "E", "pe", 50.0),
    ]
    return PipeNetwork(nodes, segs)


P = PipePosition


@pytest.mark.parametrize(
    ("a", "b", "length", "segments"),
    [
        (P("AB", 10), P("AB", 60), 50.0, ["AB"]),
        (P("AB", 90), P("BC", 20), 30.0, ["AB", "BC"]),
        # Around the loop the short way: AB@10 -> A -> DA -> D is 110 m, +20 m back along CD.
        (P("AB", 10), P("CD", 80), 130.0, ["AB", "DA", "CD"]),
        (P("AB", 50), P("CE", 25), 175.0, ["AB", "BC", "CE"]),
    ],
)
def test_path_between_follows_the_pipes(a, b, length, segments):
    path = loop_network().path_between(a, b)
    assert path.length_m == pytest.approx(length)
    assert [leg.segment for leg in path.legs if leg.length_m > 0] == segments


def test_path_on_one_pipe_can_go_around_a_loop_when_shorter():
    # Two points at the far ends of one pipe of a short loop: around is shorter than along.
    nodes = [NetworkNode(n, 0, 0) for n in "XY"]
    segs = [
        PipeSegment("long", "X", "Y", "steel", 300.0),
        PipeSegment("short", "X", "Y", "steel", 20.0),
    ]
    net = PipeNetwork(nodes, segs)
    path = net.path_between(P("long", 5.0), P("long", 295.0))
    assert path.length_m == pytest.approx(30.0)


def test_travel_time_adds_per_segment_for_mixed_materials():
    net = line_network(("cast_iron", 100.0), ("pe", 30.0))
    path = net.path_between(P("S1", 40.0), P("S2", 20.0))
    expected = 60.0 / wave_speed("cast_iron") + 20.0 / wave_speed("pe")
    assert path.travel_time_s == pytest.approx(expected)
    assert path.materials == ("cast_iron", "pe")
    assert path.speed_legs() == [
        pytest.approx((60.0, wave_speed("cast_iron"))),
        pytest.approx((20.0, wave_speed("pe"))),
    ]


@pytest.mark.parametrize("distance", [0.0, 10.0, 59.9, 60.0, 70.0, 80.0])
def test_position_at_walks_the_legs(distance):
    net = line_network(("cast_iron", 100.0), ("pe", 30.0))
    path = net.path_between(P("S1", 40.0), P("S2", 20.0))
    pos = path.position_at(distance)
    back = net.path_between(P("S1", 40.0), pos)
    assert back.length_m == pytest.approx(distance)


def test_position_at_walks_backwards_along_a_reversed_pipe():
    net = line_network(("steel", 100.0))
    path = net.path_between(P("S1", 90.0), P("S1", 10.0))
    assert path.position_at(30.0) == P("S1", 60.0)
    with pytest.raises(NetworkError):
        path.position_at(81.0)


@given(
    st.sampled_from(["AB", "BC", "CD", "DA", "CE"]),
    st.floats(0, 1),
    st.sampled_from(["AB", "BC", "CD", "DA", "CE"]),
    st.floats(0, 1),
)
def test_path_length_is_symmetric(sa, fa, sb, fb):
    net = loop_network()
    a = P(sa, fa * net.segments[sa].length_m)
    b = P(sb, fb * net.segments[sb].length_m)
    assert net.path_between(a, b).length_m == pytest.approx(net.path_between(b, a).length_m)


def test_unconnected_pipes_have_no_path():
    nodes = [NetworkNode(n, 0, 0) for n in "ABCD"]
    segs = [PipeSegment("AB", "A", "B", "pvc", 10.0), PipeSegment("CD", "C", "D", "pvc", 10.0)]
    with pytest.raises(NetworkError, match="no pipe connects"):
        PipeNetwork(nodes, segs).path_between(P("AB", 1.0), P("CD", 1.0))


@pytest.mark.parametrize(
    ("nodes", "segs", "match"),
    [
        (["A", "A"], [], "duplicate node"),
        (["A", "B"], [("S", "A", "B", "pe", 10.0), ("S", "A", "B", "pe", 5.0)], "duplicate pipe"),
        (["A"], [("S", "A", "Z", "pe", 10.0)], "unknown node 'Z'"),
        (["A", "B"], [("S", "A", "B", "pe", 0.0)], "length must be positive"),
        (["A", "B"], [("S", "A", "B", "copper", 10.0)], "unknown pipe material"),
    ],
)
def test_invalid_networks_are_rejected(nodes, segs, match):
    with pytest.raises(NetworkError, match=match):
        PipeNetwork([NetworkNode(n, 0, 0) for n in nodes], [PipeSegment(*s) for s in segs])


@pytest.mark.parametrize(
    ("pos", "match"), [(P("S1", 101.0), "outside pipe"), (P("X", 1), "unknown")]
)
def test_positions_off_the_network_are_rejected(pos, match):
    with pytest.raises(NetworkError, match=match):
        line_network(("steel", 100.0)).path_between(P("S1", 0.0), pos)


# --- reach and coverage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("material", "expected_each_way"),
    [("ductile_iron", 150.0), ("cast_iron", 136.4), ("pe", 25.0)],
)
def test_reach_along_one_pipe(material, expected_each_way):
    net = line_network((material, 1000.0))
    reach = net.reach(Listener("nl", P("S1", 500.0)))
    assert reach.own_pipe_reach_m == pytest.approx(15.0 / listening_attenuation_db_per_m(material))
    assert reach.own_pipe_reach_m == pytest.approx(expected_each_way, rel=0.02)
    assert reach.heard_length_m == pytest.approx(2 * reach.own_pipe_reach_m)


def test_reach_is_around_150_m_on_metal_and_tens_of_metres_on_plastic():
    metal = line_network(("ductile_iron", 1000.0)).reach(Listener("a", P("S1", 500.0)))
    plastic = line_network(("pe", 1000.0)).reach(Listener("b", P("S1", 500.0)))
    assert 130 <= metal.own_pipe_reach_m <= 170
    assert 10 <= plastic.own_pipe_reach_m <= 60


def test_reach_crosses_into_plastic_with_the_budget_left():
    # Logger 100 m from the joint on ductile iron: 10 dB spent, 5 dB left for PE (0.6 dB/m).
    net = line_network(("ductile_iron", 100.0), ("pe", 100.0))
    reach = net.reach(Listener("nl", P("S1", 0.0)))
    pe = [s for s in reach.stretches if s.segment == "S2"]
    assert len(pe) == 1
    assert pe[0].start_m == pytest.approx(0.0)
    assert pe[0].end_m == pytest.approx(5.0 / listening_attenuation_db_per_m("pe"))


def test_louder_floor_and_junction_loss_shorten_reach():
    net = line_network(("steel", 100.0), ("steel", 300.0))
    quiet = net.reach(Listener("nl", P("S1", 50.0), noise_floor_db=0.0))
    noisy = net.reach(Listener("nl", P("S1", 50.0), noise_floor_db=6.0))
    lossy = net.reach(Listener("nl", P("S1", 50.0)), ReachModel(junction_loss_db=3.0))
    assert noisy.heard_length_m < quiet.heard_length_m
    assert lossy.heard_length_m < quiet.heard_length_m
    s2 = next(s for s in lossy.stretches if s.segment == "S2")
    alpha = listening_attenuation_db_per_m("steel")
    assert s2.end_m == pytest.approx((15.0 - 50 * alpha - 3.0) / alpha)


def test_coverage_fraction_and_gaps():
    net = line_network(("ductile_iron", 1000.0))
    listeners = [Listener("a", P("S1", 100.0)), Listener("b", P("S1", 300.0))]
    cov = net.coverage(listeners)
    # a hears 0..250, b hears 150..450 (overlap counted once), gap 450..1000.
    assert cov.covered_length_m == pytest.approx(450.0)
    assert cov.covered_fraction == pytest.approx(0.45)
    assert [(s.start_m, s.end_m) for s in cov.uncovered] == [pytest.approx((450.0, 1000.0))]
    assert sum(s.length_m for s in cov.covered + cov.uncovered) == pytest.approx(1000.0)


def test_coverage_with_no_loggers_is_all_gap():
    cov = loop_network().coverage([])
    assert cov.covered_fraction == 0.0
    assert sum(s.length_m for s in cov.uncovered) == pytest.approx(450.0)


def test_coverage_rejects_duplicate_logger_names():
    with pytest.raises(NetworkError, match="unique"):
        loop_network().coverage([Listener("a", P("AB", 1)), Listener("a", P("BC", 1))])


def test_neighbour_pairs_skip_loggers_behind_another():
    net = line_network(("ductile_iron", 1000.0))
    listeners = [Listener(n, P("S1", x)) for n, x in (("a", 100.0), ("b", 250.0), ("c", 400.0))]
    assert net.neighbour_pairs(listeners) == [("a", "b"), ("b", "c")]
    far = [Listener("a", P("S1", 0.0)), Listener("z", P("S1", 900.0))]
    assert net.neighbour_pairs(far) == []


# --- candidate stretch ------------------------------------------------------------------------


def levels_from(net, listeners, leak: PipePosition, source_db: float, margin: float = 5.0):
    out = {}
    for lst in listeners:
        field = net.loss_field(leak)
        pos = lst.position
        level = source_db - float(net.loss_at(field, pos.segment, np.array([pos.offset_m]))[0])
        out[lst.name] = level if level >= lst.noise_floor_db + margin else None
    return out


@pytest.mark.parametrize(
    ("leak", "exact"),
    [
        (P("AB", 30.0), True),
        (P("BC", 70.0), True),
        (P("CD", 50.0), True),
        (P("DA", 99.0), True),
        # On a dead-end spur every logger hears it through C: a quieter leak at C fits as well,
        # so the levels cannot tell how far up the spur it is; the stretch still holds it.
        (P("CE", 10.0), False),
    ],
)
def test_candidate_stretch_contains_the_leak(leak, exact):
    net = loop_network()
    listeners = [
        Listener("nA", P("AB", 0.0)),
        Listener("nB", P("BC", 0.0)),
        Listener("nC", P("CD", 0.0)),
        Listener("nD", P("DA", 0.0)),
    ]
    levels = levels_from(net, listeners, leak, 22.0)
    cand = net.candidate_stretch(listeners, levels)
    assert any(
        s.segment == leak.segment and s.start_m - 1 <= leak.offset_m <= s.end_m + 1
        for s in cand.stretches
    )
    best = net.path_between(cand.best, leak).length_m
    if exact:
        assert best <= 2.0
        assert cand.source_level_db == pytest.approx(22.0, abs=0.5)


def test_silent_loggers_narrow_the_candidates():
    net = line_network(("ductile_iron", 600.0))
    listeners = [Listener("a", P("S1", 200.0)), Listener("b", P("S1", 400.0))]
    # Only a hears it, at 12 dB: it is on a's side away from b, or near a.
    only_a = net.candidate_stretch(listeners, {"a": 12.0, "b": None})
    ignoring_b = net.candidate_stretch(listeners[:1], {"a": 12.0})
    assert sum(s.length_m for s in only_a.stretches) < sum(s.length_m for s in ignoring_b.stretches)
    assert all(s.end_m <= 400.0 for s in only_a.stretches)


@pytest.mark.parametrize(
    ("levels", "match"),
    [({"a": None, "b": None}, "no logger hears"), ({"zz": 3.0}, "unknown loggers: zz")],
)
def test_candidate_stretch_rejects_bad_levels(levels, match):
    net = line_network(("ductile_iron", 600.0))
    listeners = [Listener("a", P("S1", 200.0)), Listener("b", P("S1", 400.0))]
    with pytest.raises(NetworkError, match=match):
        net.candidate_stretch(listeners, levels)


def test_segment_attenuation_follows_diameter():
    small = PipeSegment("s", "A", "B", "pe", 10.0, diameter_mm=63.0)
    large = PipeSegment("l", "A", "B", "pe", 10.0, diameter_mm=250.0)
    assert small.attenuation_db_per_m < large.attenuation_db_per_m
    assert math.isfinite(small.wave_speed_m_s)
