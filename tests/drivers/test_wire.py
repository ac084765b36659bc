"""The wire model: frame sizes checked against pymodbus's own framers, character times and
gaps per line setting, what a request and a broadcast cost."""

from __future__ import annotations

import pytest
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU
from pymodbus.pdu import bit_message as bits
from pymodbus.pdu import register_message as regs

from drivers.wire import WireModel, char_time_s, request_bytes, response_bytes

# (function, count, the request pymodbus sends, the answer a device sends)
FRAMES = [
    (1, 9, bits.ReadCoilsRequest(address=0, count=9), bits.ReadCoilsResponse(bits=[True] * 9)),
    (
        2,
        16,
        bits.ReadDiscreteInputsRequest(address=0, count=16),
        bits.ReadDiscreteInputsResponse(bits=[False] * 16),
    ),
    (
        3,
        120,
        regs.ReadHoldingRegistersRequest(address=200, count=120),
        regs.ReadHoldingRegistersResponse(registers=[7] * 120),
    ),
    (
        4,
        1,
        regs.ReadInputRegistersRequest(address=0, count=1),
        regs.ReadInputRegistersResponse(registers=[1]),
    ),
    (
        5,
        1,
        bits.WriteSingleCoilRequest(address=3, bits=[True]),
        bits.WriteSingleCoilResponse(address=3, bits=[True]),
    ),
    (
        6,
        1,
        regs.WriteSingleRegisterRequest(address=110, registers=[4]),
        regs.WriteSingleRegisterResponse(address=110, registers=[4]),
    ),
    (
        15,
        10,
        bits.WriteMultipleCoilsRequest(address=0, bits=[True] * 10),
        bits.WriteMultipleCoilsResponse(address=0, count=10),
    ),
    (
        16,
        2,
        regs.WriteMultipleRegistersRequest(address=100, registers=[8, 1]),
        regs.WriteMultipleRegistersResponse(address=100, count=2),
    ),
]


@pytest.mark.parametrize(("function", "count", "request_pdu", "response_pdu"), FRAMES)
def test_frame_sizes_match_what_pymodbus_puts_on_the_wire(
    function, count, request_pdu, response_pdu
):
    """Bytes per RTU frame, and the MBAP frame's 4 extra bytes on TCP."""
    rtu, tcp = FramerRTU(DecodePDU(False)), FramerSocket(DecodePDU(False))
    for pdu in (request_pdu, response_pdu):
        pdu.dev_id = 3
    assert request_bytes(function, count) == len(rtu.buildFrame(request_pdu))
    assert response_bytes(function, count) == len(rtu.buildFrame(response_pdu))
    extra = WireModel.tcp().frame_extra_bytes
    assert request_bytes(function, count) + extra == len(tcp.buildFrame(request_pdu))


@pytest.mark.parametrize("function", [0, 7, 23, 43])
def test_functions_the_gateway_never_sends_are_refused(function):
    with pytest.raises(ValueError, match=f"function {function}"):
        request_bytes(function, 1)
    with pytest.raises(ValueError, match=f"function {function}"):
        response_bytes(function, 1)


@pytest.mark.parametrize(
    ("baudrate", "bytesize", "parity", "stopbits", "bits"),
    [
        (9600, 8, "N", 1, 10),
        (9600, 8, "E", 1, 11),
        (9600, 8, "N", 2, 11),
        (19200, 8, "O", 2, 12),
        (38400, 7, "E", 1, 10),
    ],
)
def test_character_is_start_data_parity_stop(baudrate, bytesize, parity, stopbits, bits):
    assert char_time_s(baudrate, bytesize, parity, stopbits) == pytest.approx(bits / baudrate)
    wire = WireModel.rtu(baudrate, bytesize, parity, stopbits)
    assert wire.char_s == pytest.approx(bits / baudrate)


@pytest.mark.parametrize(
    ("baudrate", "gap_s"),
    [(9600, 3.5 * 11 / 9600), (19200, 3.5 * 11 / 19200), (38400, 0.00175), (115200, 0.00175)],
)
def test_gap_is_three_and_a_half_characters_fixed_above_19200(baudrate, gap_s):
    assert WireModel.rtu(baudrate, 8, "E", 1).gap_s == pytest.approx(gap_s)


def test_a_configured_gap_wins():
    assert WireModel.rtu(9600, gap_s=0.02).gap_s == 0.02


def test_a_recording_block_at_9600_8E1():
    """Block index write + 120-register read: 269 bytes, four silences, two turnarounds."""
    wire = WireModel.rtu(9600, 8, "E", 1, turnaround_s=0.005)
    char = 11 / 9600
    gap = 3.5 * char
    write = wire.request_s(6, 1)
    read = wire.request_s(3, 120)
    assert write == pytest.approx(2 * gap + 16 * char + 0.005)
    assert read == pytest.approx(2 * gap + 253 * char + 0.005)
    assert write + read == pytest.approx(0.3343, abs=1e-4)  # (269 + 14) x 11 bits + 10 ms
    assert wire.request_s(3, 120, turnaround_s=0.0) == pytest.approx(wire.exchange_s(3, 120))


def test_broadcast_costs_its_frame_and_the_wait_after_it():
    wire = WireModel.rtu(19200)
    char = 10 / 19200
    assert wire.broadcast_s(1) == pytest.approx(wire.gap_s + 11 * char + 0.1)
    tcp = WireModel.tcp()
    assert tcp.broadcast_s(1) == pytest.approx(tcp.per_request_s + 0.1)  # devices act first


def test_tcp_prices_a_round_trip_not_bytes():
    tcp = WireModel.tcp(round_trip_s=0.002)
    assert not tcp.serial and WireModel.rtu(9600).serial
    assert tcp.exchange_s(3, 1) == tcp.exchange_s(3, 125) == pytest.approx(0.002)


def test_rtu_over_tcp_adds_the_round_trip_to_the_line():
    line = WireModel.rtu(9600)
    tunnel = WireModel.rtu(9600, per_request_s=0.003)
    assert tunnel.exchange_s(3, 10) == pytest.approx(line.exchange_s(3, 10) + 0.003)


@pytest.mark.parametrize(
    "kwargs", [{"char_s": -1.0, "gap_s": 0.0}, {"char_s": 0.0, "gap_s": 0.0, "turnaround_s": -1}]
)
def test_negative_times_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be >= 0"):
        WireModel(**kwargs)


def test_baudrate_must_be_positive():
    with pytest.raises(ValueError, match="baudrate"):
        char_time_s(0)
