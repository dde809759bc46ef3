"""Remote commands under ``<base>/cmd/<name>``: parse, validate, dispatch, answer.

Every payload is untrusted: :func:`handle` checks size, UTF-8, JSON object, field names, types
and ranges before anything reaches the device, and turns every failure — ours, the device's
refusal, or a bug — into a one-line ``{"ok": false, "error": ...}`` reply. Nothing raises out of it.

Commands (payload is a JSON object; an empty payload means ``{}``)::

    collect          {"label": L, "action": "start"|"stop"}  or  {"label": L, "seconds": S}
    train            {}
    listen           {"on": true|false}
    position         {"value": 0..10}
    threshold        {"value": 0..1}
    examples/delete  {"label": L}  or  {"session": ID}
    examples/move    {"session": ID, "label": L}   the hold's sound to another class
    model/rollback   {}
    false_move       {}          "that was wrong": undo the last move, keep its sound as background
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.config import SLIDER_MAX, SLIDER_MIN
from edge.control import DeviceControl
from edge.errors import CommandError, EdgeError
from edge.telemetry.messages import result_payload

log = logging.getLogger(__name__)

MAX_SHOWN = 40
"""Client-supplied text quoted back in an error is cut to this many characters."""


def _show(value: Any) -> str:
    """A short repr of client-supplied data for an error message (never multi-line, never huge)."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


# ---------------------------------------------------------------------- field checks
def _g(x: float | None, unbounded: str) -> str:
    return unbounded if x is None else format(x, "g")


def _number(cmd: str, key: str, value: Any, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> float:
    # NOTE: bool is a subclass of int in Python: {"value": true} must not mean 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"{cmd}: field '{key}' must be a number, got {_show(value)}")
    try:
        x = float(value)
    except OverflowError:  # a 300-digit integer is valid JSON
        x = math.inf
    if not math.isfinite(x):
        raise CommandError(f"{cmd}: field '{key}' must be a finite number")
    if lo is not None and (x <= lo if lo_open else x < lo) or hi is not None and x > hi:
        left = "(" if lo_open else "["
        raise CommandError(f"{cmd}: field '{key}' = {_show(value)} is out of range {left}{_g(lo, '-inf')}, {_g(hi, 'inf')}]")
    return x


def _bool(cmd: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CommandError(f"{cmd}: field '{key}' must be true or false, got {_show(value)}")
    return value


def _text(cmd: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise CommandError(f"{cmd}: field '{key}' must be a non-empty string, got {_show(value)}")
    try:
        # NOTE: JSON may escape a lone surrogate ("\udc80"): a str Python holds, but no text SQLite
        # (or a UTF-8 reply) can carry. Refuse it here rather than fail deep in the store.
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CommandError(f"{cmd}: field '{key}' is not valid text: lone surrogate {_show(value[exc.start])} "
                           f"at character {exc.start}; send UTF-8 text") from None
    return value


def _label(cmd: str, value: Any, labels: tuple[str, ...]) -> str:
    label = _text(cmd, "label", value)
    if label not in labels:
        raise CommandError(f"{cmd}: unknown label {_show(label)}: configured labels are {', '.join(labels)}")
    return label


def _exactly_one(cmd: str, args: dict[str, Any], keys: tuple[str, str]) -> str:
    present = [k for k in keys if k in args]
    if len(present) != 1:
        raise CommandError(f"{cmd}: give exactly one of '{keys[0]}' or '{keys[1]}'")
    return present[0]


def _require(cmd: str, args: dict[str, Any], key: str) -> Any:
    if key not in args:
        raise CommandError(f"{cmd}: missing field '{key}'")
    return args[key]


# ---------------------------------------------------------------------- the commands
def _collect(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    label = _label("collect", _require("collect", args, "label"), tuple(control.labels))
    how = _exactly_one("collect", args, ("action", "seconds"))
    if how == "seconds":
        return control.collect_for(label, _number("collect", "seconds", args["seconds"], 0.0, None, lo_open=True))
    action = args["action"]
    if action == "start":
        return control.collect_start(label)
    if action == "stop":
        return control.collect_stop(label)
    raise CommandError(f"collect: field 'action' must be \"start\" or \"stop\", got {_show(action)}")


def _train(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.train()


def _listen(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.set_listening(_bool("listen", "on", _require("listen", args, "on")))


def _position(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.set_position(_number("position", "value", _require("position", args, "value"), SLIDER_MIN, SLIDER_MAX))


def _threshold(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.set_threshold(_number("threshold", "value", _require("threshold", args, "value"), 0.0, 1.0))


def _delete(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    key = _exactly_one("examples/delete", args, ("label", "session"))
    if key == "label":
        return control.delete_examples(label=_label("examples/delete", args["label"], tuple(control.labels)))
    return control.delete_examples(session=_text("examples/delete", "session", args["session"]))


def _move(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    session = _text("examples/move", "session", _require("examples/move", args, "session"))
    label = _label("examples/move", _require("examples/move", args, "label"), tuple(control.labels))
    return control.move_session(session, label)


def _rollback(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.rollback_model()


def _false_move(control: DeviceControl, args: dict[str, Any]) -> dict[str, Any]:
    return control.false_move("mqtt")


@dataclass(frozen=True)
class CommandSpec:
    name: str
    keys: frozenset[str]
    run: Callable[[DeviceControl, dict[str, Any]], dict[str, Any]]
    example: dict[str, Any] = field(default_factory=dict)


COMMANDS: dict[str, CommandSpec] = {c.name: c for c in (
    CommandSpec("collect", frozenset({"label", "action", "seconds"}), _collect, {"label": "left", "action": "start"}),
    CommandSpec("train", frozenset(), _train),
    CommandSpec("listen", frozenset({"on"}), _listen, {"on": True}),
    CommandSpec("position", frozenset({"value"}), _position, {"value": 5.0}),
    CommandSpec("threshold", frozenset({"value"}), _threshold, {"value": 0.75}),
    CommandSpec("examples/delete", frozenset({"label", "session"}), _delete, {"label": "left"}),
    CommandSpec("examples/move", frozenset({"session", "label"}), _move, {"session": "20260101T120000-abc123", "label": "right"}),
    CommandSpec("model/rollback", frozenset(), _rollback),
    CommandSpec("false_move", frozenset(), _false_move),
)}


# ---------------------------------------------------------------------- parsing
def _reject_constant(name: str) -> Any:
    raise CommandError(f"payload is not valid JSON: {name} is not allowed")


def parse_payload(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Bytes → a JSON object, or a CommandError naming what is wrong."""
    if len(payload) > max_bytes:
        raise CommandError(f"payload is {len(payload)} bytes: the limit is {max_bytes} (mqtt.max_payload_bytes)")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"payload is not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        return {}  # an empty message is the natural way to press "train" from a shell
    try:
        # NOTE: json accepts NaN/Infinity by default; they are not JSON and not valid values here.
        value = json.loads(text, parse_constant=_reject_constant)
    except CommandError:
        raise
    except json.JSONDecodeError as exc:
        raise CommandError(f"payload is not valid JSON: {exc.msg} at char {exc.pos}") from None
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        raise CommandError(f"payload is not valid JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise CommandError(f"payload must be a JSON object like {{...}}, got {type(value).__name__}")
    return value


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def handle(name: str, payload: bytes, control: DeviceControl, max_bytes: int) -> dict[str, Any]:
    """Run one command; always returns the reply dict (see messages.result_payload), never raises."""
    shown = _one_line(name, 100)
    try:
        spec = COMMANDS.get(name)
        if spec is None:
            raise CommandError(f"unknown command {_show(name)}: use one of {', '.join(COMMANDS)}")
        args = parse_payload(payload, max_bytes)
        unknown = sorted(set(args) - spec.keys)
        if unknown:
            allowed = ", ".join(sorted(spec.keys)) or "none"
            raise CommandError(f"{name}: unknown field {_show(unknown[0])} (allowed: {allowed})")
        result = spec.run(control, args)
        return result_payload(shown, True, result if isinstance(result, dict) else {"value": result})
    except EdgeError as exc:
        return result_payload(shown, False, error=_one_line(str(exc)) or type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a client must never crash the device
        log.exception("command %s failed unexpectedly", shown)
        return result_payload(shown, False, error=_one_line(f"internal error: {type(exc).__name__}: {exc}"))
