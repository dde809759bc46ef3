"""What is wrong but survivable (a damaged model, an unavailable store, a class mismatch).

Each problem is said once: a warning in the log, an ``error`` event, and an entry in the state's
``problems`` until it is cleared. Problems found before MQTT is up (at start-up) are held back
and published by :meth:`Problems.start_reporting`, so they reach a monitor too.
"""

from __future__ import annotations

import logging

from edge.events import ErrorOccurred, EventBus

log = logging.getLogger(__name__)


class Problems:
    def __init__(self, bus: EventBus):
        self.bus = bus
        self.active: dict[str, str] = {}
        """Message by key (``model``, ``store``, ``classes``); the state report copies it."""
        self._unannounced: list[tuple[str, str]] = []
        self._announcing = False

    def report(self, key: str, where: str, message: str) -> None:
        if self.active.get(key) == message:
            return
        self.active[key] = message
        log.warning("%s", message)
        if self._announcing:
            self.bus.publish(ErrorOccurred(where, message))
        else:
            self._unannounced.append((where, message))

    def clear(self, key: str) -> None:
        self.active.pop(key, None)

    def start_reporting(self) -> None:
        """From now on publish at once; first the ones held back."""
        self._announcing = True
        pending, self._unannounced = self._unannounced, []
        for where, message in pending:
            self.bus.publish(ErrorOccurred(where, message))


def store_problem(store) -> str | None:
    """Why ``store`` cannot take examples now (an unavailable store says why), or None."""
    return getattr(store, "problem", None)
