"""dsp.multilocate: least squares over every pair's delay on the pipe graph, triplet
consistency, and naming the pair or logger that disagrees."""

import itertools

import numpy as np
import pytest

from dsp.multilocate import (
    PairDelay,
    line_candidates,
    locate_delays,
    network_candidates,
    triplet_closures,
)
from dsp.network import NetworkNode, PipeNetwork, PipePosition, PipeSegment

LINE = {"A": 0.0, "B": 100.0, "C": 250.0, "D": 400.0}
C = 1200.0


def line_delays(leak_m, positions=LINE, c=C, conf=0.9):
    t = {k: abs(leak_m - p) / c for k, p in positions.items()}
    return [PairDelay(a, b, t[a] - t[b], conf) for a, b in itertools.combinations(positions, 2)]


@pytest.mark.parametrize("leak_m", [5.0, 130.0, 250.0, 399.0])
def test_consistent_delays_give_the_leak(leak_m):
    result = locate_delays(line_candidates(LINE, C), line_delays(leak_m))
    assert result.position.offset_m == pytest.approx(leak_m, abs=0.25)
    assert result.consistent and result.disagreeing is None
    assert result.residual_ms < 0.2
    assert all(v < 1e-9 for v in result.closures_ms.values())


def test_a_bad_pair_is_named():
    delays = [
        PairDelay(d.a, d.b, d.tdoa_s + 0.01, d.confidence) if (d.a, d.b) == ("A", "C") else d
        for d in line_delays(130.0)
    ]
    result = locate_delays(line_candidates(LINE, C), delays)
    assert not result.consistent
    assert result.disagreeing == "A/C"
    assert result.closures_ms["A/B/C"] == pytest.approx(10.0)
    assert result.position.offset_m == pytest.approx(130.0, abs=5.0)


def test_a_logger_with_a_clock_error_is_named():
    """Every pair with D is 8 ms off (D started late): no single pair explains it, D does."""
    delays = []
    for d in line_delays(130.0):
        shift = 0.008 if d.b == "D" else (-0.008 if d.a == "D" else 0.0)
        delays.append(PairDelay(d.a, d.b, d.tdoa_s + shift, d.confidence))
    result = locate_delays(line_candidates(LINE, C), delays)
    assert not result.consistent and result.disagreeing == "D"


def test_unconfident_pairs_take_no_part():
    delays = line_delays(130.0)
    delays[0] = PairDelay(delays[0].a, delays[0].b, 0.05, 0.1)
    result = locate_delays(line_candidates(LINE, C), delays)
    assert result.ignored == ("A/B",) and result.consistent
    with pytest.raises(ValueError, match="need two or more"):
        locate_delays(line_candidates(LINE, C), [PairDelay("A", "B", 0.0, 0.9)])


def test_closures_use_either_pair_order():
    closures = triplet_closures(
        [PairDelay("A", "B", 0.001), PairDelay("C", "B", 0.002), PairDelay("A", "C", -0.001)]
    )
    assert closures == {"A/B/C": pytest.approx(0.0)}


def test_on_a_pipe_graph_with_mixed_materials():
    """A tee: iron main J1-J2-J3 and a PE branch J2-J4; loggers at the three ends. The leak on
    the branch is found on the branch, travel times per material."""
    net = PipeNetwork(
        [NetworkNode(n, 0, 0) for n in ("J1", "J2", "J3", "J4")],
        [
            PipeSegment("M1", "J1", "J2", "ductile_iron", 120.0),
            PipeSegment("M2", "J2", "J3", "ductile_iron", 150.0),
            PipeSegment("B1", "J2", "J4", "pe", 40.0),
        ],
    )
    loggers = {
        "A": PipePosition("M1", 0.0),
        "B": PipePosition("M2", 150.0),
        "C": PipePosition("B1", 40.0),
    }
    leak = PipePosition("B1", 25.0)
    fields = {n: net.time_field(p) for n, p in loggers.items()}
    t = {
        n: float(net.time_at(f, leak.segment, np.array([leak.offset_m]))[0])
        for n, f in fields.items()
    }
    delays = [PairDelay(a, b, t[a] - t[b], 0.9) for a, b in itertools.combinations(loggers, 2)]
    result = locate_delays(network_candidates(net, loggers, step_m=0.25), delays)
    assert result.position.segment == "B1"
    assert result.position.offset_m == pytest.approx(25.0, abs=0.3)
    assert result.consistent
