"""Why a connection ended, in words: a session taken over by another client with our client
id, above all. Against a real mosquitto (MQTT 3.1.1 and 5: mosquitto 2.0 closes the taken
over connection without a DISCONNECT, so the uplink must say what is likely), and against a
loopback peer that speaks MQTT 5 bytes and sends what EMQX and HiveMQ send (DISCONNECT with
reason 0x8E), since the mosquitto here never does."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest

from edge_agent.uplink import Uplink, UplinkSettings
from edge_agent.uplink.disconnects import QUICK_CLOSE_S, Disconnect, QuickCloses
from tests.edge_agent.uplink.test_client import open_box, run, settings_for, wait_until
from tests.helpers.mosquitto import Mosquitto

CLIENT_ID = "riverside-gw-01"


@pytest.mark.parametrize(
    ("ended", "mqtt5", "again", "expected"),
    [
        pytest.param(
            Disconnect(0x8E, "Session taken over", True, None, 1.0), True, False,
            "session taken over: another client connected with client id 'riverside-gw-01'",
            id="v5-0x8E",
        ),
        pytest.param(
            Disconnect(0x8B, "Server shutting down", True), True, False,
            "disconnected by the broker: Server shutting down (MQTT 5 reason 0x8B)",
            id="v5-other-reason",
        ),
        pytest.param(
            Disconnect(0x80, "Unspecified error", False,
                       "failed to receive on socket: [Errno 104] Connection reset by peer"),
            False, False,
            "connection lost: failed to receive on socket: [Errno 104] Connection reset by peer",
            id="reset",
        ),
        pytest.param(
            Disconnect(0x8D, "Keep alive timeout", False), True, False,
            "connection lost: nothing from the broker within the keepalive",
            id="keepalive",
        ),
        pytest.param(
            Disconnect(0x80, "Unspecified error", False, None, 1.0), False, False,
            "connection closed by the broker (MQTT 3.1.1 gives no reason): if this repeats",
            id="311-first",
        ),
        pytest.param(
            Disconnect(0x80, "Unspecified error", False, None, 1.0), False, True,
            "again (MQTT 3.1.1 gives no reason): most likely another client with client id "
            "'riverside-gw-01' takes the session over",
            id="311-again",
        ),
    ],
)  # fmt: skip
def test_describe(ended, mqtt5, again, expected):
    text = ended.describe(CLIENT_ID, mqtt5=mqtt5, again=again)
    assert expected in text and "\n" not in text


def test_quick_closes_count_only_reasonless_closes_right_after_connecting():
    closes = QuickCloses()
    quick = Disconnect(0x80, "Unspecified error", False, None, 1.0)
    assert [closes.note(quick) for _ in range(3)] == [1, 2, 3]
    assert closes.note(Disconnect(0x80, "Unspecified error", False, None, QUICK_CLOSE_S + 1)) == 0
    closes.note(quick)
    assert closes.note(Disconnect(0x80, "x", False, "failed to receive on socket: reset")) == 0


async def _taken_over(settings: UplinkSettings, tmp_path, take) -> str:
    """Run an uplink while ``take()`` (a coroutine) steals its session; its last error."""
    box = open_box(tmp_path)
    up = Uplink(settings, box)
    await up.start()
    try:
        await wait_until(lambda: up.status().state == "connected", 30)
        return await take(up)
    finally:
        await up.stop()
        box.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_session_taken_over_at_mosquitto_says_what_is_likely(tmp_path, protocol):
    """A second client keeps connecting with the gateway's client id (what a second
    daemon, or a cloned gateway, does): mosquitto drops our connection without a reason;
    the uplink says the broker closed it, and once it repeats, that a takeover is likely."""
    with Mosquitto(tmp_path) as broker:
        settings = settings_for(broker, protocol=protocol)

        async def take(up: Uplink) -> str:
            thieves = []
            try:
                for _ in range(20):
                    thief = mqtt.Client(
                        mqtt.CallbackAPIVersion.VERSION2,
                        client_id=settings.effective_client_id,
                        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
                    )
                    thief.connect("127.0.0.1", broker.port)
                    thief.loop_start()
                    thieves.append(thief)
                    await asyncio.sleep(0.6)
                    if "most likely" in (up.status().last_error or ""):
                        break
                return up.status().last_error or ""
            finally:
                for thief in thieves:
                    thief.loop_stop()
                    with contextlib.suppress(Exception):
                        thief.disconnect()

        error = run(_taken_over(settings, tmp_path, take))
    assert "connection closed by the broker right after connecting, again" in error
    assert f"client id {settings.effective_client_id!r}" in error
    if protocol == "3.1.1":
        assert "MQTT 3.1.1 gives no reason" in error
    assert "Unspecified error" not in error


async def _mqtt5_peer_sending(reason: int) -> tuple[asyncio.Server, int]:
    """A loopback MQTT 5 peer: CONNACK (success), then a DISCONNECT with ``reason``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # CONNECT
        writer.write(bytes([0x20, 0x03, 0x00, 0x00, 0x00]))  # CONNACK: success, no props
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(bytes([0xE0, 0x02, reason, 0x00]))  # DISCONNECT: reason, no props
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_session_taken_over_is_logged_as_exactly_that(tmp_path):
    """MQTT 5 DISCONNECT 0x8E ("Session taken over", what EMQX and HiveMQ send): the
    uplink's error says so and names the client id."""

    async def main() -> str:
        server, port = await _mqtt5_peer_sending(0x8E)
        peer = SimpleNamespace(url=f"mqtt://127.0.0.1:{port}")
        settings = settings_for(peer, reconnect_min_s=5.0, reconnect_max_s=5.0)

        async def take(up: Uplink) -> str:
            await wait_until(lambda: up.status().last_error is not None, 10)
            return up.status().last_error or ""

        try:
            return await _taken_over(settings, tmp_path, take)
        finally:
            server.close()

    error = run(main())
    assert error.startswith(
        f"session taken over: another client connected with client id {CLIENT_ID!r} "
        "(MQTT 5 reason 0x8E)"
    )
