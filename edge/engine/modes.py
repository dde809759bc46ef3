"""The device's modes and the one table of what each mode refuses.

    idle ──collect──▶ collecting ──release──▶ idle / listening (whichever it came from)
    idle ──train────▶ training ──done──────▶ listening (listen.autostart) or idle
    idle ◀─listen───▶ listening

A request the current mode refuses gets a ``StateError`` with the reason below, a ``Refused``
event and an LED error blink (:meth:`ModeMachine.refuse`); everything else is allowed. The mode
changes only in :meth:`ModeMachine.set`, which shows it on the LED and publishes it.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, NoReturn

from edge.errors import StateError
from edge.events import EventBus, ModeChanged, Refused

log = logging.getLogger(__name__)


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


class ModeMachine:
    """The current mode, the LED that shows it, and the refusals: the engine and its parts change the
    mode only through :meth:`set` (on the loop thread); any thread may read :attr:`mode`."""

    def __init__(self, bus: EventBus, led: Any = None):
        self._bus = bus
        self._led = led
        self.mode: Mode = Mode.IDLE

    def set(self, mode: Mode, label: str | None = None) -> None:
        self.mode = mode
        if self._led is not None:
            self._led.show(mode)
        self._bus.publish(ModeChanged(mode, label))
        log.info("mode: %s%s", mode, f" ({label})" if label else "")

    def refuse(self, request: str, reason: str) -> NoReturn:
        self._bus.publish(Refused(request, reason))
        if self._led is not None:
            self._led.show("error")
            self._led.show(self.mode)
        log.warning("refused %s: %s", request, reason)
        raise StateError(reason)

    def allow(self, request: str, shown: str | None = None, **detail: object) -> None:
        """Refuse ``request`` (shown as ``shown``) if the current mode does (:data:`REFUSALS`)."""
        reason = refusal(request, self.mode, **detail)
        if reason is not None:
            self.refuse(shown or request, reason)
