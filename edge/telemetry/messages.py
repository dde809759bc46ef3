"""MQTT topic names and JSON payload builders.

Everything that decides what goes on the wire lives here, so the telemetry client, the monitor
and the tests agree on one layout (documented in ``deploy/mosquitto/TOPICS.md``)::

    <base>/status          online | offline            retained (last will = offline)
    <base>/state           DeviceControl.snapshot()    retained
    <base>/prediction      {t, label, score, probs}    rate-limited, QoS 0
    <base>/training        training progress / finished
    <base>/event           collected, deleted, refused, error, model, mode, decision, ...
    <base>/cmd/<name>      commands (see edge.telemetry.commands)
    <base>/cmd/result      one reply per command
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from edge.events import Event, PredictionMade, TrainingFinished, TrainingProgress

ONLINE = "online"
OFFLINE = "offline"
RESULT = "result"
"""The reply topic's last level: ``<base>/cmd/result`` (never treated as a command)."""


@dataclass(frozen=True)
class Topics:
    """The topic names of one device."""

    base: str
    discovery_prefix: str = "homeassistant"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def prediction(self) -> str:
        return f"{self.base}/prediction"

    @property
    def training(self) -> str:
        return f"{self.base}/training"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def cmd_prefix(self) -> str:
        return f"{self.base}/cmd/"

    @property
    def cmd_filter(self) -> str:
        return f"{self.base}/cmd/#"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/{RESULT}"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/will topic: 'online' means it restarted and wants discovery again."""
        return f"{self.discovery_prefix}/status"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def command_name(self, topic: str) -> str | None:
        """``<base>/cmd/collect`` → ``collect``; None for topics outside cmd/ and for cmd/result."""
        if not topic.startswith(self.cmd_prefix):
            return None
        name = topic[len(self.cmd_prefix):]
        return None if name == RESULT else name


# ---------------------------------------------------------------------- JSON helpers
def _clean(value: Any) -> Any:
    """Make a value strict-JSON safe: NaN/inf → null, tuples → lists, unknown objects → str.

    Floats are rounded to 4 decimals: stream times and scores carried 16 digits of noise
    (``"t": 1.0448979591836736``) into every event."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return str(value)


def dumps(obj: Any) -> bytes:
    """Compact, strict JSON (no NaN, which many MQTT consumers cannot parse)."""
    return json.dumps(_clean(obj), separators=(",", ":"), allow_nan=False).encode("utf-8")


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


# ---------------------------------------------------------------------- payloads
def status_payload(online: bool) -> bytes:
    # NOTE: plain text, not JSON: Home Assistant's availability defaults are "online"/"offline".
    return (ONLINE if online else OFFLINE).encode()


def state_payload(snapshot: dict[str, Any]) -> bytes:
    return dumps({**snapshot, "ts": round(time.time(), 3)})


def prediction_payload(event: PredictionMade) -> bytes:
    return dumps({"t": _r(event.t, 3), "label": event.label, "score": _r(event.score),
                  "probs": {k: _r(v) for k, v in event.probs.items()}})


def training_payload(event: TrainingProgress | TrainingFinished) -> bytes:
    return dumps(event.to_dict())


def event_payload(event: Event, ts: float | None = None) -> bytes:
    """``{"kind": ..., <fields>, "ts": unix time}`` for the ``event`` topic."""
    return dumps({**event.to_dict(), "ts": round(ts if ts is not None else time.time(), 3)})


def result_payload(command: str, ok: bool, result: dict[str, Any] | None = None,
                   error: str | None = None) -> dict[str, Any]:
    """The reply to one command (a dict; :func:`dumps` it to publish)."""
    if ok:
        return {"command": command, "ok": True, "result": result if result is not None else {}}
    return {"command": command, "ok": False, "error": error or "failed"}


def decode_json(payload: bytes) -> Any:
    """For subscribers (monitor, tests): JSON, or the text itself when it is not JSON."""
    text = payload.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
