"""The MQTT uplink: drains the outbox to the broker with paho-mqtt 2.x, losing nothing.

Lifecycle: ``await start()`` runs ``_run`` as a task; ``kick()`` says "new rows in the outbox";
``await stop(drain_s)`` lets it drain a little, publishes the retained ``offline`` state and
disconnects cleanly (so the Last Will does not fire). ``status()`` is cheap and lock-free.

How (aiomqtt's shape, the application owns the reconnect loop):
- One paho ``Client`` per connection attempt (``CallbackAPIVersion.VERSION2``), its network loop
  in its own thread (``loop_start``). paho's queues are memory only, so a dropped connection
  throws the client away; the outbox is the only queue that matters.
- Connect (blocking socket + TLS handshake in a worker thread), wait for CONNACK, publish the
  retained birth ``online``, hand the connection to ``derived`` (the integrations: retained
  device metadata and state, discovery configs, which it republishes whole on every connect
  and updates while connected) and subscribe to what it asks for (commands, Home Assistant's
  status; nothing by default), then stream the outbox:
  ``begin`` up to the free window (``inflight``), publish each row QoS 1, and ``end`` a batch
  with the ids whose PUBACK succeeded. A v5 PUBACK with a failure reason code "completes" in
  paho too: we check ``reason_code.is_failure`` and keep the row (retry after a backoff).
- paho callbacks run on its thread; they only hand (mid, ok) or a received message to the
  asyncio loop through ``call_soon_threadsafe``. All SQLite work runs in an executor, never on
  the loop. Derived state is not durable: it is the current state, republished after every
  reconnect; events alone go through the outbox.
- Lost connection: what was acknowledged is deleted, the outbox is rewound (everything else is
  sent again: at-least-once, consumers dedupe by ``id``), reconnect after a capped exponential
  backoff with jitter. Why it was lost is said in words (``disconnects``): a session taken
  over by another client with our client id above all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, TypeVarTuple

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent import __version__, payload
from edge_agent.component_status import UplinkStatus
from edge_agent.errors import RuntimeFailure
from edge_agent.events import PAYLOAD_VERSION, JsonValue
from edge_agent.outbox import Batch, Outbox
from edge_agent.uplink.disconnects import Disconnect, QuickCloses, SocketErrors
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.uplink.topics import Topics

__all__ = [
    "Derived",
    "Publish",
    "Uplink",
    "UplinkError",
    "UplinkStatus",
    "backoff_delay",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Lazy proxy (no bind at import): picks up configure_logging() done later by the daemon.
log = structlog.get_logger("edge_agent.uplink")

IDLE_POLL_S = 1.0  # re-check the outbox this often even without a kick
STOP_PUBACK_TIMEOUT_S = 5.0  # clean stop: wait this long for the `offline` PUBACK
READ_AHEAD_MIN = 256  # rows read per outbox hop while draining a backlog (fewer thread hops)


class UplinkError(RuntimeFailure):
    """A connection attempt failed (message is one line, never holds a secret)."""


def backoff_delay(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": in [cap/2, cap], cap = min(max, min*2^n).

    Never zero (no reconnect storm when a broker of thousands of gateways comes back), never
    above ``max_s``, and spread so a fleet does not reconnect in lockstep.
    """
    cap = min(max_s, min_s * (2.0 ** min(attempt, 30)))
    return rng.uniform(cap / 2.0, cap)


# (topic, payload, qos, retain) -> queued on the live connection (False: not connected)
Publish = Callable[[str, bytes, int, bool], bool]


class Derived(Protocol):
    """State derived from the gateway that rides on the uplink's connection (the integrations,
    ``edge_agent.integrations.hub``): republished whole on each connect, not durable."""

    def subscriptions(self) -> Sequence[str]:
        """Topic filters to subscribe to on this connection (none: subscribe to nothing)."""
        ...

    def connected(self, publish: Publish) -> None:
        """A new connection is up (birth sent): republish everything, keep ``publish``."""
        ...

    def disconnected(self) -> None:
        """The connection is gone: ``publish`` returns False from now on."""
        ...

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on a subscribed filter (on the loop)."""
        ...


def _json(obj: JsonValue) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class _Pending:
    """One outbox batch on the wire."""

    batch: Batch
    waiting: int = 0
    accepted: list[str] = field(default_factory=list)


class _Session:
    """One paho client and one connection. Callbacks post to the asyncio loop."""

    def __init__(self, uplink: Uplink) -> None:
        s = uplink.settings
        self.uplink = uplink
        self.loop = uplink._loop
        self.connack: asyncio.Future[None] = self.loop.create_future()
        self.closed = False
        self.disconnect_reason: str | None = None
        self.connected_at: float | None = None  # monotonic, at the CONNACK
        self.acks: deque[tuple[int, bool, str]] = deque()  # appended by paho's thread
        self._ack_lock = threading.Lock()
        self._ack_posted = False
        v5 = s.protocol == "5"
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=s.effective_client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,  # a lost session is replaced, never revived by paho
        )
        self.client.connect_timeout = s.connect_timeout_s
        self.client.max_inflight_messages_set(s.inflight)
        self.client.max_queued_messages_set(0)
        self.client.will_set(
            uplink.topics.state,
            _json({"v": PAYLOAD_VERSION, "state": "offline", "reason": "connection lost"}),
            qos=1,
            retain=True,
        )
        if s.username is not None or s.password is not None:
            self.client.username_pw_set(s.username, s.password.reveal() if s.password else None)
        if s.broker.tls:
            self.client.tls_set_context(uplink._tls_context)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.subscribed: set[str] = set()
        self._socket_errors = SocketErrors()
        self.client.enable_logger(self._socket_errors.logger)

    # paho thread -> loop -----------------------------------------------------------------
    def _post(self, fn: Callable[[*Ts], None], *args: *Ts) -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed at shutdown
            self.loop.call_soon_threadsafe(fn, *args)

    # paho's VERSION2 callbacks: (client, userdata, flags or mid, reason code, properties)
    def _on_connect(
        self, _c: object, _u: object, _f: object, reason_code: ReasonCode, _p: object
    ) -> None:
        if reason_code.is_failure:
            self._post(self._fail_connack, f"broker refused the connection: {reason_code}")
        else:
            self._post(self._ok_connack)

    def _ok_connack(self) -> None:
        if not self.connack.done():
            self.connected_at = time.monotonic()
            self.connack.set_result(None)

    def _fail_connack(self, message: str) -> None:
        if not self.connack.done():
            self.connack.set_exception(UplinkError(message))

    def _on_disconnect(
        self,
        _c: object,
        _u: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _p: object,
    ) -> None:
        since = self.connected_at
        ended = Disconnect(
            reason_code.value,
            str(reason_code),
            flags.is_disconnect_packet_from_server,
            self._socket_errors.last,
            None if since is None else time.monotonic() - since,
        )
        self._post(self._disconnected, ended)

    def _disconnected(self, ended: Disconnect) -> None:
        if self.closed:
            return  # we closed it
        again = self.uplink._quick_closes.note(ended) > 1
        settings = self.uplink.settings
        mqtt5 = settings.protocol == "5"
        self._lost(ended.describe(settings.effective_client_id, mqtt5=mqtt5, again=again))

    def _lost(self, message: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.disconnect_reason = message
        self._fail_connack(f"{message} (before CONNACK)")
        self.uplink._kick.set()

    def _on_publish(
        self, _c: object, _u: object, mid: int, reason_code: ReasonCode, _p: object
    ) -> None:
        # MQTT 3.1.1 has no PUBACK reason: paho reports Success. In v5 a failure code
        # (0x80 and up: not authorized, quota exceeded, ...) means the broker did NOT take it.
        ok = not reason_code.is_failure
        self.acks.append((mid, ok, "" if ok else str(reason_code)))
        # One loop wake-up per burst of PUBACKs, not one per PUBACK.
        with self._ack_lock:
            if self._ack_posted:
                return
            self._ack_posted = True
        self._post(self._deliver_acks)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        self._post(self.uplink._on_message, self, message.topic, bytes(message.payload))

    def subscribe(self, filters: Sequence[str]) -> None:
        """Subscribe to ``filters`` not yet subscribed, drop those no longer wanted (QoS 1)."""
        wanted = set(filters)
        gone = sorted(self.subscribed - wanted)
        new = sorted(wanted - self.subscribed)
        if gone:
            self.client.unsubscribe(gone)
        if new:
            self.client.subscribe([(f, 1) for f in new])
        self.subscribed = wanted

    def _deliver_acks(self) -> None:
        with self._ack_lock:
            self._ack_posted = False  # before draining: a PUBACK appended now posts again
        while self.acks:
            mid, ok, reason = self.acks.popleft()
            self.uplink._on_ack(self, mid, ok, reason)
        self.uplink._after_acks(self)

    # loop side ---------------------------------------------------------------------------
    async def connect(self) -> None:
        """TCP + TLS in a worker thread, then wait for CONNACK. Raises UplinkError."""
        s = self.uplink.settings
        where = str(s.broker)
        try:
            await asyncio.to_thread(
                self.client.connect, s.broker.host, s.broker.port, s.keepalive_s
            )
        except ssl.SSLCertVerificationError as exc:
            raise UplinkError(
                f"TLS to {where}: certificate refused: {exc.verify_message}"
            ) from None
        except ssl.SSLError as exc:
            raise UplinkError(f"TLS to {where}: {exc.reason or exc}") from None
        except TimeoutError:
            raise UplinkError(f"cannot connect to {where}: timed out") from None
        except OSError as exc:
            raise UplinkError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # (a TLS socket is one too)
            with contextlib.suppress(OSError):
                # Small QoS 1 packets: do not let Nagle hold a PUBLISH back for a pending ACK.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        try:
            await asyncio.wait_for(asyncio.shield(self.connack), s.connect_timeout_s)
        except TimeoutError:
            raise UplinkError(f"no CONNACK from {where} in {s.connect_timeout_s:g} s") from None

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> int | None:
        """Queue one message; its mid, or None when paho says the link is down."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    async def close(self, clean: bool) -> None:
        """Clean: publish retained ``offline`` and DISCONNECT (no Will). Then stop the thread."""
        if clean and not self.closed and self.connack.done() and not self.connack.exception():
            done = self.loop.create_future()
            self.uplink._stop_waiter = (self, done)
            mid = self.publish(
                self.uplink.topics.state,
                _json(
                    {
                        "v": PAYLOAD_VERSION,
                        "state": "offline",
                        "reason": "stopped",
                        "ts": round(time.time() * 1000),
                    }
                ),
                qos=1,
                retain=True,
            )
            if mid is not None:
                self.uplink._stop_mid = mid
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done, STOP_PUBACK_TIMEOUT_S)
        self.closed = True
        with contextlib.suppress(OSError):
            self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        if self.connack.done() and not self.connack.cancelled():
            self.connack.exception()  # mark retrieved


class Uplink:
    """Drains ``outbox`` to the broker of ``settings``. See the module docstring.

    ``derived``: the integrations riding on the connection (retained metadata and state,
    discovery, commands). ``executor``: where outbox calls run (the daemon passes its single
    outbox thread); None = asyncio's default pool.
    """

    def __init__(
        self,
        settings: UplinkSettings,
        outbox: Outbox,
        derived: Derived | None = None,
        *,
        executor: Executor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.derived = derived
        self.topics = Topics(settings.topic_root, settings.site, settings.gateway)
        self._tls_context = settings.tls.context() if settings.broker.tls else None
        self._executor = executor
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Event = None  # type: ignore[assignment]
        self._stopping = False
        self._drain_until: float | None = None
        self._state = "connecting"
        self._last_error: str | None = None
        self._published = 0
        self._failed = 0
        self._reconnects = 0
        self._inflight = 0
        self._by_mid: dict[int, tuple[_Pending, str]] = {}
        self._session: _Session | None = None
        self._stop_mid: int | None = None
        self._stop_waiter: tuple[_Session, asyncio.Future[None]] | None = None
        self._failures_pending = False
        self._quick_closes = QuickCloses()  # reasonless closes right after connecting
        self._outstanding: deque[_Pending] = deque()
        self._ready: deque[tuple[_Pending, tuple[str, str, bytes, int]]] = deque()

    # -- public ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background task (returns at once; connecting happens in the task)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="uplink")

    def kick(self) -> None:
        """New rows are in the outbox: look now rather than at the next idle poll.
        Safe from any thread."""
        if self._loop is not None and self._kick is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._kick.set)

    async def stop(self, drain_s: float = 0.0) -> None:
        """Drain for up to ``drain_s`` seconds, publish ``offline`` (retained), disconnect.
        Idempotent."""
        if self._task is None:
            return
        if drain_s > 0 and self._state == "connected":
            self._drain_until = time.monotonic() + drain_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), drain_s)
        self._stopping = True
        self._kick.set()
        task, self._task = self._task, None
        if self._state == "connecting":
            task.cancel()  # a TCP/TLS connect or CONNACK wait may take connect_timeout_s
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._state = "stopped"

    def status(self) -> UplinkStatus:
        return UplinkStatus(
            state=self._state,
            url=str(self.settings.broker),
            last_error=self._last_error,
            published=self._published,
            failed=self._failed,
            inflight=self._inflight,
            reconnects=self._reconnects,
        )

    def beat_if_alive(self, beat: Callable[[], None]) -> None:
        """Call ``beat`` while the uplink task is running (the daemon's progress watchdog)."""
        if self._task is not None and not self._task.done():
            beat()

    def reconfigure(self, settings: UplinkSettings) -> None:
        """New settings (config reload): takes effect with a fresh connection."""
        if settings != self.settings:
            self._tls_context = settings.tls.context() if settings.broker.tls else None
            self.settings = settings
            self.topics = Topics(settings.topic_root, settings.site, settings.gateway)
            if self._session is not None:
                self._session._lost("reconfigured")

    def refresh_subscriptions(self) -> None:
        """``derived`` wants other filters (a reload turned commands on or off): apply them to
        the live connection (the next one subscribes anyway)."""
        session = self._session
        if session is not None and self._state == "connected" and self.derived is not None:
            session.subscribe(self.derived.subscriptions())

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Publish derived state on the live connection, not through the outbox; False when
        not connected (the state is republished on the next connect)."""
        session = self._session
        if session is None or self._state != "connected" or session.closed:
            return False
        return session.publish(topic, payload, qos, retain) is not None

    # -- the loop -------------------------------------------------------------------------
    async def _io(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        return await self._loop.run_in_executor(self._executor, fn, *args)

    async def _drained(self) -> None:
        while self._state == "connected" and (self._inflight or self.outbox.depth()):
            await self._wait(IDLE_POLL_S / 4)

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), timeout)
        self._kick.clear()

    async def _sleep_unless_stopping(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            await self._wait(left)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            self._state = "connecting"
            session = _Session(self)
            self._session = session
            try:
                await session.connect()
            except asyncio.CancelledError:  # stop() while connecting: do not wait it out
                await session.close(clean=False)
                self._session = None
                raise
            except UplinkError as exc:
                self._error(str(exc))
                await session.close(clean=False)
                self._session = None
                await self._sleep_unless_stopping(self._backoff(attempt))
                attempt += 1
                continue
            attempt = 0
            self._state = "connected"
            log.info("uplink connected", url=str(self.settings.broker))
            try:
                await self._serve(session)
            finally:
                await self._finish_session(session)
            if not self._stopping:
                self._state = "disconnected"
                self._reconnects += 1
                self._error(session.disconnect_reason or "connection lost")
                await self._sleep_unless_stopping(self._backoff(attempt))
                attempt += 1

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return backoff_delay(attempt, s.reconnect_min_s, s.reconnect_max_s, self._rng)

    def _error(self, message: str) -> None:
        if message != self._last_error:
            log.warning("uplink problem", url=str(self.settings.broker), error=message)
        self._last_error = message

    async def _serve(self, session: _Session) -> None:
        self._announce(session)
        cap = self.settings.inflight
        self._outstanding = deque()
        self._ready = deque()
        while not self._stopping and not session.closed:
            # Read ahead (at least two windows), so a PUBACK can be answered by the next publish at
            # once, on this thread (no executor hop per message): the window never runs dry,
            # and our next PUBLISH carries the TCP ACK the broker's PUBACKs may wait for.
            if len(self._ready) < cap:
                want = max(2 * cap, READ_AHEAD_MIN) - len(self._ready)
                batch, encoded = await self._io(self._read_ahead, want)
                if batch:
                    pending = _Pending(batch, waiting=len(batch))
                    self._outstanding.append(pending)
                    self._ready.extend((pending, msg) for msg in encoded)
                    self._pump(session)
                    continue
            await self._wait(IDLE_POLL_S)  # a PUBACK, a kick, a disconnect or stop wakes it
            await self._end_completed(self._outstanding)
            if self._failures_pending:
                self._failures_pending = False
                await self._sleep_unless_stopping(self._backoff(0))
        # Whatever is still on the wire: keep the acknowledged part, resend the rest later.
        for pending in self._outstanding:
            await self._io(self.outbox.end, pending.batch, pending.accepted)
        self._outstanding.clear()
        self._ready.clear()

    def _read_ahead(self, n: int) -> tuple[Batch, list[tuple[str, str, bytes, int]]]:
        """(executor) The next rows and their (id, topic, payload, qos), encoded off the loop."""
        batch = self.outbox.begin(n)
        enc = self.settings.encoding
        tqos = self.settings.telemetry_qos
        encoded: list[tuple[str, str, bytes, int]] = [
            (
                ev.id,
                self.topics.for_event(ev),
                payload.encode(ev, enc),
                tqos if ev.stream == "telemetry" else 1,
            )
            for ev in batch.events
        ]
        return batch, encoded

    def _pump(self, session: _Session) -> None:
        """Publish read-ahead events while the in-flight window has room."""
        cap = self.settings.inflight
        while self._ready and self._inflight < cap and not session.closed:
            pending, (event_id, topic, payload, qos) = self._ready[0]
            mid = session.publish(topic, payload, qos)
            if mid is None:  # link went down under us: the rest waits for the next session
                session._lost("connection lost while publishing")
                return
            self._ready.popleft()
            self._by_mid[mid] = (pending, event_id)
            self._inflight += 1

    def _announce(self, session: _Session) -> None:
        """Retained birth and derived state: before any event on this connection."""
        birth: dict[str, JsonValue] = {
            "v": PAYLOAD_VERSION,
            "state": "online",
            "ts": round(time.time() * 1000),
            "site": self.settings.site,
            "gateway": self.settings.gateway,
            "agent": f"edge-agent {__version__}",
            "encoding": self.settings.encoding,
        }
        session.publish(self.topics.state, _json(birth), qos=1, retain=True)
        if self.derived is not None:
            self.derived.connected(self.publish)
            session.subscribe(self.derived.subscriptions())

    def _on_message(self, session: _Session, topic: str, payload: bytes) -> None:
        if session is self._session and self.derived is not None:
            self.derived.on_message(topic, payload)

    def _on_ack(self, session: _Session, mid: int, ok: bool, reason: str) -> None:
        if self._stop_waiter is not None and mid == self._stop_mid:
            waiter_session, fut = self._stop_waiter
            if waiter_session is session and not fut.done():
                fut.set_result(None)
                return
        if session is not self._session:
            return  # a late PUBACK of a dead session: that row is resent anyway
        entry = self._by_mid.pop(mid, None)
        if entry is None:
            return  # birth / metadata
        pending, event_id = entry
        pending.waiting -= 1
        self._inflight -= 1
        if ok:
            pending.accepted.append(event_id)
            self._published += 1
        else:
            self._failed += 1
            self._failures_pending = True
            self._error(f"broker refused {event_id}: {reason}")

    def _after_acks(self, session: _Session) -> None:
        if session is not self._session:
            return
        self._pump(session)
        done = bool(self._outstanding) and self._outstanding[0].waiting == 0
        if done or len(self._ready) < self.settings.inflight:
            self._kick.set()  # end a finished batch / read ahead

    async def _end_completed(self, outstanding: deque[_Pending]) -> None:
        done: list[_Pending] = []
        while outstanding and outstanding[0].waiting == 0:
            done.append(outstanding.popleft())
        for pending in done:
            await self._io(self.outbox.end, pending.batch, pending.accepted)

    async def _finish_session(self, session: _Session) -> None:
        if self.derived is not None:
            self.derived.disconnected()
        for pending, _event_id in list(self._by_mid.values()):
            pending.waiting = 0
        self._by_mid.clear()
        self._inflight = 0
        clean = self._stopping
        self._state = "stopping" if clean else "disconnected"
        await session.close(clean=clean)
        self._session = None
        self._stop_waiter = None
        await self._io(self.outbox.rewind)
        if clean:
            log.info("uplink stopped", url=str(self.settings.broker))
