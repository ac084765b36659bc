"""Safe commands on ``{base}/cmd/{verb}``: three verbs, each answered on
``{base}/cmd-result/{id}``; anything else refused and answered (docs/mqtt.md, Commands).

- ``record``: record one noise logger (``"device"``) or all of them, now;
- ``rebirth``: republish births, metadata and retained state (also Sparkplug's, when on);
- ``ping``: the gateway answers with its agent, uptime and devices online.

Request (JSON object, at most ``MAX_PAYLOAD`` bytes, schemas/command.schema.json)::

    {"id": "ops-7f3a", "ts": 1767225600000, "device": "nl-01"}

Refused, with an answer naming why (``error``): ``malformed`` (not JSON, not an object, a
missing or bad ``id``/``ts``, an unknown key), ``unknown_command``, ``duplicate_id`` (an id
seen within the last ``2 x max_age_s``), ``expired`` (``ts`` older than ``max_age_s``, or as
far in the future), ``unknown_device`` / ``not_a_logger`` / ``unavailable`` (record). A
request without a readable ``id`` is answered on ``cmd-result/_malformed``. Nothing here
changes the config or runs code: a verb is a call on ``CommandTarget``'s three methods.
Who may command is the broker's ACL (``deploy/mosquitto/acl.example``), not this module.

The request schema's rules are applied here by hand (the daemon never imports jsonschema);
a test holds this module and the shipped schema to the same verdicts.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.events import PAYLOAD_VERSION, JsonValue
from edge_agent.integrations.link import Message, json_bytes
from edge_agent.uplink.topics import Topics

__all__ = [
    "MALFORMED_RESULT_ID",
    "MAX_PAYLOAD",
    "VERBS",
    "CommandRefused",
    "CommandTarget",
    "Commands",
]

VERBS = ("record", "rebirth", "ping")
MAX_PAYLOAD = 4096  # bytes: a command is a few dozen; anything larger is refused unread
MALFORMED_RESULT_ID = "_malformed"  # ids start with a letter or digit, so this never collides
MAX_REMEMBERED_IDS = 4096
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
DEVICE_PATTERN = re.compile(r"[A-Za-z0-9_.-]+\Z")
_KEYS = {"v", "id", "ts", "device"}


class CommandRefused(Exception):
    """A command the gateway will not carry out: ``code`` for machines, the message for
    people (one line); ``command_id`` when the request's id could be read."""

    def __init__(self, code: str, message: str, command_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.command_id = command_id


class CommandTarget(Protocol):
    """What commands may do: the whole surface (no config, no code)."""

    def record(self, device: str | None) -> list[str]:
        """Record ``device`` (None: every noise logger) now; the loggers asked. Raises
        CommandRefused (``unknown_device``, ``not_a_logger``, ``unavailable``)."""
        ...

    def rebirth(self) -> None:
        """Republish births, metadata and retained state."""
        ...

    def ping(self) -> dict[str, JsonValue]:
        """A small health answer."""
        ...


@dataclass(frozen=True, slots=True)
class Request:
    verb: str
    id: str
    ts_ms: int
    device: str | None


class Commands:
    """Parses, checks and answers commands. ``now``: epoch seconds (the wall clock)."""

    def __init__(
        self, topics: Topics, target: CommandTarget, now: Callable[[], float], max_age_s: float
    ) -> None:
        self.topics = topics
        self.target = target
        self.now = now
        self.max_age_s = max_age_s
        self._prefix = f"{topics.base}/cmd/"
        self._seen: OrderedDict[str, float] = OrderedDict()  # id -> when seen (epoch s)

    @property
    def subscription(self) -> str:
        return self.topics.commands

    def handles(self, topic: str) -> bool:
        return topic.startswith(self._prefix)

    def on_message(self, topic: str, payload: bytes) -> Message:
        """One command in, its answer out (never raises for anything a sender can cause)."""
        verb = topic[len(self._prefix) :]
        try:
            request = parse(verb, payload)
            self._check(request)
            result = self._run(request)
        except CommandRefused as refused:
            return self._answer(refused.command_id or MALFORMED_RESULT_ID, verb, error=refused)
        return self._answer(request.id, verb, result=result)

    def _check(self, request: Request) -> None:
        now = self.now()
        for seen_id, at in list(self._seen.items()):  # forget what can no longer repeat
            if now - at <= 2 * self.max_age_s and len(self._seen) <= MAX_REMEMBERED_IDS:
                break
            del self._seen[seen_id]
        if request.id in self._seen:
            raise CommandRefused(
                "duplicate_id", f"command id {request.id!r} was seen already", request.id
            )
        self._seen[request.id] = now
        age_s = now - request.ts_ms / 1000.0
        if abs(age_s) > self.max_age_s:
            when = "old" if age_s > 0 else "in the future"
            raise CommandRefused(
                "expired",
                f"ts is {abs(age_s):.0f} s {when}; accepted within {self.max_age_s:g} s "
                "of the gateway clock",
                request.id,
            )
        if request.verb not in VERBS:
            raise CommandRefused(
                "unknown_command",
                f"unknown command {request.verb!r}: the gateway accepts {', '.join(VERBS)}",
                request.id,
            )
        if request.device is not None and request.verb != "record":
            raise CommandRefused("malformed", f"{request.verb} takes no 'device'", request.id)

    def _run(self, request: Request) -> dict[str, JsonValue]:
        if request.verb == "record":
            try:
                return {"devices": list(self.target.record(request.device))}
            except CommandRefused as refused:
                raise CommandRefused(refused.code, str(refused), request.id) from None
        if request.verb == "rebirth":
            self.target.rebirth()
            return {}
        return self.target.ping()

    def _answer(
        self,
        command_id: str,
        verb: str,
        *,
        result: dict[str, JsonValue] | None = None,
        error: CommandRefused | None = None,
    ) -> Message:
        body: dict[str, JsonValue] = {
            "v": PAYLOAD_VERSION,
            "id": command_id,
            "cmd": verb,
            "ok": error is None,
            "ts": round(self.now() * 1000),
        }
        if error is not None:
            body["error"] = error.code
            body["message"] = str(error)
        else:
            body["result"] = result or {}
        return Message(self.topics.command_result(command_id), json_bytes(body))


def parse(verb: str, payload: bytes) -> Request:
    """A request from its topic's verb and payload. Raises CommandRefused("malformed")."""
    if len(payload) > MAX_PAYLOAD:
        raise CommandRefused(
            "malformed", f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})"
        )
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise CommandRefused("malformed", "payload is not JSON") from None
    if not isinstance(body, dict):
        raise CommandRefused("malformed", "payload is not a JSON object")
    command_id = body.get("id")
    if not isinstance(command_id, str) or not ID_PATTERN.match(command_id):
        raise CommandRefused(
            "malformed",
            "'id' must be 1-64 letters, digits, '_', '.', '-' (a letter or digit first)",
        )
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise CommandRefused("malformed", f"unknown key {unknown[0]!r}", command_id)
    if "v" in body and (body["v"] != PAYLOAD_VERSION or isinstance(body["v"], bool)):
        raise CommandRefused("malformed", f"'v' must be {PAYLOAD_VERSION}", command_id)
    ts = body.get("ts")
    if not _is_epoch_ms(ts):
        raise CommandRefused(
            "malformed", "'ts' must be the send time in epoch milliseconds", command_id
        )
    device = body.get("device")
    if "device" in body and (not isinstance(device, str) or not DEVICE_PATTERN.match(device)):
        raise CommandRefused("malformed", "'device' must be a device name", command_id)
    return Request(verb, command_id, int(ts), device)  # type: ignore[arg-type]


def _is_epoch_ms(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0 and float(value).is_integer()
