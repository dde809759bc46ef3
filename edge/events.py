"""Typed events the device emits, and the bus that carries them to telemetry and logs.

Stages never call MQTT (or each other's leaves): they publish an event here, and whoever
subscribed (the MQTT telemetry, the event log, a test) receives it. ``EventBus.publish`` may be
called from any thread; subscribers must return quickly (enqueue, never block on the network).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    """Base class. ``kind`` names the event in JSON (``event`` topic, event log)."""

    kind = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class PredictionMade(Event):
    """One classified window (every hop while listening)."""

    kind = "prediction"
    t: float
    """Stream time at the window's end, seconds."""
    label: str
    score: float
    probs: dict[str, float]
    level_db: float
    """Mean dB of the window (a loudness proxy)."""


@dataclass(frozen=True)
class DecisionMade(Event):
    """The decision policy acted: the slider moved (or was asked to)."""

    kind = "decision"
    t: float
    label: str
    score: float
    position: float


@dataclass(frozen=True)
class PositionChanged(Event):
    kind = "position"
    position: float
    source: str
    """decision / button / mqtt / cli"""


@dataclass(frozen=True)
class ModeChanged(Event):
    kind = "mode"
    mode: str
    """idle / collecting / training / listening"""
    label: str | None = None
    """The class being collected, in collecting mode."""


@dataclass(frozen=True)
class CollectionStarted(Event):
    kind = "collect_started"
    label: str
    session: str
    source: str


@dataclass(frozen=True)
class ExamplesCollected(Event):
    """A hold ended and its windows were committed to the store."""

    kind = "collected"
    label: str
    session: str
    stored: int
    """Windows stored under ``label``."""
    background: int
    """Quiet windows of the hold stored as the background class."""
    skipped: int
    """Quiet windows dropped (gate on, quiet_to_background off)."""
    counts: dict[str, int]
    """Examples per label in the store after the commit."""


@dataclass(frozen=True)
class ExamplesDeleted(Event):
    kind = "deleted"
    deleted: int
    label: str | None
    session: str | None
    counts: dict[str, int]


@dataclass(frozen=True)
class ExamplesMoved(Event):
    """One session's windows moved to another class (the console's curation)."""
    kind = "moved"
    moved: int
    session: str
    label: str
    counts: dict[str, int]


@dataclass(frozen=True)
class FalseMoveMarked(Event):
    """"That was wrong": the last move was undone and its sound stored as background."""
    kind = "false_move"
    label: str
    t: float
    stored: int
    position: float
    session: str
    source: str


@dataclass(frozen=True)
class TrainingProgress(Event):
    kind = "training_progress"
    epoch: int
    epochs: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None


@dataclass(frozen=True)
class TrainingFinished(Event):
    kind = "training_finished"
    ok: bool
    version: int | None
    val_accuracy: float | None
    seconds: float
    error: str | None = None
    report: dict | None = None
    """The post-training report: per-class thresholds, estimated false moves per minute on sounds
    never trained on, the share of held-out holds detected (see edge.model.calibrate)."""


@dataclass(frozen=True)
class ModelChanged(Event):
    kind = "model"
    version: int | None
    labels: tuple[str, ...]
    val_accuracy: float | None


@dataclass(frozen=True)
class Refused(Event):
    """A request was refused in the current mode (button, MQTT or CLI)."""

    kind = "refused"
    request: str
    reason: str


@dataclass(frozen=True)
class ErrorOccurred(Event):
    kind = "error"
    where: str
    message: str


Subscriber = Callable[[Event], None]


@dataclass
class EventBus:
    """Synchronous fan-out to subscribers; a failing subscriber is logged, never propagated."""

    _subscribers: list[Subscriber] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        with self._lock:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

    def publish(self, event: Event) -> None:
        with self._lock:
            subs = tuple(self._subscribers)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a subscriber must never break the audio path
                log.exception("event subscriber %r failed on %s", fn, event.kind)
