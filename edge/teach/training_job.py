"""On-device training off the loop thread.

The trainer (store → train → calibrate → int8 → registry, :mod:`edge.model.pipeline`) runs on its
own thread so the audio loop never waits for it; its per-epoch progress goes straight to the bus
(events are thread-safe), and its outcome goes back to the loop thread through ``deliver`` (the
engine's call queue), which is where the new model is put in service.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from edge.errors import EdgeError
from edge.events import EventBus, TrainingProgress
from edge.memory import roomy_heap

log = logging.getLogger(__name__)

Deliver = Callable[[Any, "Exception | None", float], None]
"""(outcome, error, seconds) → None; called once, from the training thread."""


class TrainingJob:
    def __init__(self, trainer: Callable[..., Any], bus: EventBus, deliver: Deliver):
        self._trainer = trainer
        self._bus = bus
        self._deliver = deliver
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="train", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the trainer to stop (it checks per batch) and wait for it a little."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _progress(self, epoch, epochs, loss, accuracy, val_loss=None, val_accuracy=None) -> None:
        self._bus.publish(TrainingProgress(epoch, epochs, loss, accuracy, val_loss, val_accuracy))

    def _work(self) -> None:
        t0 = time.monotonic()
        try:
            with roomy_heap():
                outcome = self._trainer(progress=self._progress, should_stop=self._stopping.is_set)
        except Exception as exc:  # noqa: BLE001 - reported, the old model stays in service
            if not isinstance(exc, EdgeError):
                log.exception("training failed")
            self._deliver(None, exc, time.monotonic() - t0)
        else:
            self._deliver(outcome, None, time.monotonic() - t0)
