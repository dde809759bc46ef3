"""The device's modes and the one table of what each mode refuses.

    idle ──collect──▶ collecting ──release──▶ idle / listening (whichever it came from)
    idle ──train────▶ training ──done──────▶ listening (listen.autostart) or idle
    idle ◀─listen───▶ listening

A request the current mode refuses gets a ``StateError`` with the reason below, a ``Refused``
event and an LED error blink (the engine does those); everything else is allowed.
"""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    """A str: compares equal to, and serialises as, its value ("idle", …) in MQTT and JSON."""

    IDLE = "idle"
    COLLECTING = "collecting"
    TRAINING = "training"
    LISTENING = "listening"


REFUSALS: dict[str, dict[Mode, str]] = {
    "collect": {Mode.TRAINING: "training in progress: collect again when it has finished",
                Mode.COLLECTING: "already collecting {collecting!r}: release it first"},
    "train": {Mode.COLLECTING: "cannot train while collecting", Mode.TRAINING: "cannot train while training"},
    "listen on": {Mode.TRAINING: "cannot listen while training", Mode.COLLECTING: "cannot listen while collecting"},
    "delete examples": {Mode.TRAINING: "training in progress: delete when it has finished"},
    "model rollback": {Mode.TRAINING: "training in progress"},
}
"""request → mode → why it is refused (``{collecting}``: the label being collected). Listening off is never
refused: during a hold or a training it only cancels the return to listening."""


def refusal(request: str, mode: Mode, **detail: object) -> str | None:
    """Why ``mode`` refuses ``request``, or None when it is allowed."""
    reason = REFUSALS[request].get(mode)
    return reason.format(**detail) if reason is not None else None
