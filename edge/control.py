"""What a controller (MQTT, tests, the CLI) may ask of a running device.

The daemon's engine (``edge.engine.core.Engine``) implements :class:`DeviceControl`. Every method may be
called from any thread (paho's network thread, for example): the implementation hops onto the
device's own loop and waits briefly for the answer. Each returns a small JSON-able dict, or
raises an :class:`edge.errors.EdgeError` subclass whose message is the one-line reason
(``StateError`` for "not now", ``CommandError``/``ConfigError`` for bad arguments).
"""

from __future__ import annotations

from typing import Any, Protocol


class DeviceControl(Protocol):
    @property
    def labels(self) -> tuple[str, ...]:
        """Configured class labels, in class-index order."""

    def collect_start(self, label: str, source: str = "mqtt") -> dict[str, Any]:
        """Start collecting ``label`` (as pressing its button). Refused unless idle or listening."""

    def collect_stop(self, label: str) -> dict[str, Any]:
        """Stop collecting (as releasing the button); returns the ExamplesCollected figures."""

    def collect_for(self, label: str, seconds: float, source: str = "mqtt") -> dict[str, Any]:
        """Collect ``label`` for ``seconds`` (0 < seconds <= collect.max_hold_s), then stop by itself."""

    def train(self) -> dict[str, Any]:
        """Start training in the background; returns at once ({"started": true})."""

    def false_move(self, source: str = "mqtt") -> dict[str, Any]:
        """"That was wrong": undo the last move (within 30 s) and store its sound as background."""

    def set_listening(self, on: bool) -> dict[str, Any]:
        """Turn listening on or off. On needs an installed model."""

    def set_position(self, value: float) -> dict[str, Any]:
        """Move the slider to ``value`` (0..10)."""

    def set_threshold(self, value: float) -> dict[str, Any]:
        """Change the decision threshold (0..1) until restart."""

    def delete_examples(self, label: str | None = None, session: str | None = None) -> dict[str, Any]:
        """Delete every example of ``label``, or of one collection ``session``."""

    def move_session(self, session: str, label: str) -> dict[str, Any]:
        """Move one collection session's examples to ``label`` (its quiet background stays)."""

    def rollback_model(self) -> dict[str, Any]:
        """Go back to the previous model version."""

    def snapshot(self) -> dict[str, Any]:
        """The device state, as published on the retained ``state`` topic."""
