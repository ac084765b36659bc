"""The Sparkplug edge node's own MQTT session (``SparkplugEdge``): the NDEATH with this
connection's ``bdSeq`` is its Will, so it cannot share the uplink's connection (whose Will is
the lifeline ``state``). Same broker, TLS and credentials as the uplink; client id
``sparkplug.client_id`` or the uplink's plus ``-spb``.

On every connect: a new ``bdSeq`` (kept in the state directory, so a host application tells
this session's NDEATH from an older one), the Will, the NCMD subscription, then the births;
with ``primary_host_id`` set, the births wait until that host's retained
``spBv1.0/STATE/<id>`` says online, and the session ends (NDEATH first) when it says offline,
to come back when the host does. ``Node Control/Rebirth`` in an NCMD: every birth again. A
clean stop publishes the NDEATH itself (a clean DISCONNECT does not fire the Will).

paho's network loop runs in its thread; its callbacks only post to the asyncio loop. What the
node says while the session is down is dropped: births after the reconnect carry the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config.model import SparkplugConfig
from edge_agent.integrations.link import Message
from edge_agent.integrations.sparkplug.node import NAMESPACE, SparkplugNode
from edge_agent.integrations.sparkplug.payloads import SparkplugError, requests_rebirth
from edge_agent.integrations.state import CurrentState
from edge_agent.logs import get_logger
from edge_agent.uplink.client import backoff_delay
from edge_agent.uplink.settings import UplinkSettings

__all__ = ["BDSEQ_FILE", "SparkplugEdge"]

BDSEQ_FILE = "sparkplug-bdseq"
STOP_TIMEOUT_S = 5.0

log = get_logger("edge_agent.sparkplug")


class SparkplugEdge:
    """The hub's ``SparkplugSink`` with a session of its own. ``state``: the hub's current
    state (read at each birth)."""

    def __init__(
        self,
        settings: UplinkSettings,
        config: SparkplugConfig,
        node: SparkplugNode,
        state: Callable[[], CurrentState],
        *,
        state_dir: Path | None,
        io: Executor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.node = node
        self._state = state
        self._bdseq_path = state_dir / BDSEQ_FILE if state_dir is not None else None
        self._io = io
        self._rng = rng or random.Random()
        self.bd_seq = -1
        self.online = False  # births sent on the live connection
        self._client: mqtt.Client | None = None
        self._lost: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._host_online = config.primary_host_id is None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client_id(self) -> str:
        return self.config.client_id or f"{self.settings.effective_client_id}-spb"

    @property
    def host_state_topic(self) -> str | None:
        host = self.config.primary_host_id
        return None if host is None else f"{NAMESPACE}/STATE/{host}"

    # -- the hub's SparkplugSink -----------------------------------------------------------

    def update(self, state: CurrentState, devices: object) -> None:
        if self.online:
            self._send(self.node.update(state, devices))  # type: ignore[arg-type]

    def set_catalog(self, state: CurrentState) -> None:
        if not self.online:
            return
        self._send(self.node.removed(state))
        if self.node.redefined(state):
            self._births()
        else:
            self._send(self.node.update(state, state.catalog.names))

    def rebirth(self) -> None:
        if self.online:
            self._births()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="sparkplug")

    async def stop(self) -> None:
        """NDEATH, then a clean disconnect. Idempotent."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._lost is not None:
            self._lost.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
                log.warning("sparkplug session failed", error=str(exc) or type(exc).__name__)
            if self._stopping:
                break
            s = self.settings
            delay = backoff_delay(attempt, s.reconnect_min_s, s.reconnect_max_s, self._rng)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_stop(), delay)

    async def _wait_stop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.2)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        self.bd_seq = await loop.run_in_executor(self._io, self._next_bd_seq)
        self._host_online = self.config.primary_host_id is None
        lost = asyncio.Event()
        self._lost = lost
        connack: asyncio.Future[None] = loop.create_future()
        client = self._new_client(loop, connack, lost)
        s = self.settings
        await asyncio.to_thread(client.connect, s.broker.host, s.broker.port, s.keepalive_s)
        client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(connack), s.connect_timeout_s)
            self._client = client
            filters = [(self.node.ncmd, 1)]
            if self.host_state_topic is not None:
                filters.append((self.host_state_topic, 1))
            client.subscribe(filters)
            log.info("sparkplug online", node=self.node.topic("NBIRTH"), bd_seq=self.bd_seq)
            if self._host_online:
                self._births()
            await lost.wait()
        finally:
            self.online = False
            self._client = None
            await self._close(client, clean=self._stopping or not lost.is_set())
            if not connack.done():
                connack.cancel()

    def _new_client(
        self, loop: asyncio.AbstractEventLoop, connack: asyncio.Future[None], lost: asyncio.Event
    ) -> mqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.connect_timeout = s.connect_timeout_s
        client.will_set(
            self.node.topic("NDEATH"), self.node.death(self.bd_seq), qos=1, retain=False
        )
        if s.username is not None or s.password is not None:
            client.username_pw_set(s.username, s.password.reveal() if s.password else None)
        if s.broker.tls:
            client.tls_set_context(s.tls.context())

        def post(fn: Callable[..., None], *args: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(fn, *args)

        def on_connect(_c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            if rc.is_failure:
                post(_fail, connack, ConnectionError(f"broker refused the connection: {rc}"))
            else:
                post(_done, connack)

        def on_disconnect(_c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            post(lost.set)
            post(_fail, connack, ConnectionError(f"connection lost: {rc}"))

        def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
            post(self._on_message, message.topic, bytes(message.payload))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    async def _close(self, client: mqtt.Client, *, clean: bool) -> None:
        if clean:
            info = client.publish(
                self.node.topic("NDEATH"), self.node.death(self.bd_seq), qos=1, retain=False
            )
            with contextlib.suppress(ValueError, RuntimeError):
                await asyncio.to_thread(info.wait_for_publish, STOP_TIMEOUT_S)
        with contextlib.suppress(OSError):
            client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    # -- messages --------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self.node.ncmd:
            try:
                rebirth = requests_rebirth(payload)
            except SparkplugError as exc:
                log.warning("sparkplug NCMD ignored", error=str(exc))
                return
            if rebirth:
                log.info("sparkplug rebirth requested")
                self._births()
        elif topic == self.host_state_topic:
            online = _host_online(payload)
            if online and not self._host_online:
                self._host_online = True
                self._births()
            elif not online and self._host_online and self.config.primary_host_id is not None:
                log.warning("sparkplug primary host offline: ending the session")
                self._host_online = False
                if self._lost is not None:
                    self._stopping_session()

    def _stopping_session(self) -> None:
        """End this session cleanly (NDEATH, DISCONNECT); the run loop reconnects."""
        client = self._client
        self.online = False
        if client is not None:
            client.publish(self.node.topic("NDEATH"), self.node.death(self.bd_seq), qos=1)
            with contextlib.suppress(OSError):
                client.disconnect()

    def _births(self) -> None:
        if self._client is None or not self._host_online:
            return
        self.online = True
        self._send(self.node.births(self._state(), self.bd_seq))

    def _send(self, messages: list[Message]) -> None:
        client = self._client
        if client is None:
            return
        for m in messages:
            client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)

    def _next_bd_seq(self) -> int:
        """(executor) The next connection's bdSeq, 0-255, kept across restarts."""
        previous = self.bd_seq
        path = self._bdseq_path
        if path is not None and previous < 0:
            with contextlib.suppress(OSError, ValueError):
                previous = int(path.read_text().strip())
        value = (previous + 1) % 256 if previous >= 0 else 0
        if path is not None:
            try:
                path.write_text(f"{value}\n")
            except OSError as exc:
                log.warning("cannot keep the sparkplug bdSeq", path=str(path), error=str(exc))
        return value


def _host_online(payload: bytes) -> bool:
    """Sparkplug 3.0 STATE: ``{"online": true, "timestamp": ...}`` (2.2's plain ``ONLINE``
    accepted too)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload.strip() == b"ONLINE"
    return isinstance(body, dict) and body.get("online") is True


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved: a lost session before CONNACK is logged by the loop
