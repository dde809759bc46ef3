"""The running device: its parts joined on one loop thread, and the DeviceControl API they answer.

Threads. One *loop thread* owns the engine (:class:`edge.engine.loop.LoopActor`): it calls
:meth:`Engine.process` with new samples and :meth:`Engine.poll` between blocks. Everything else —
gpiozero's button threads, the MQTT command worker, the training thread — talks to the engine
through :meth:`Engine.call`, which queues the request for the loop thread and waits for its answer.
So mode changes, the store and the slider are only ever touched by one thread, and no lock is held
on the audio path.

Modes and what each refuses: :mod:`edge.engine.modes` (one table). Refusals are a :class:`StateError`
with the reason, a ``Refused`` event and an LED error blink; listening on also needs a model.

The parts, each in its module: the mode (:mod:`edge.engine.modes`), the per-hop path
(:mod:`edge.engine.hop_pipeline`), collection (:mod:`edge.engine.hold_control`), the model in service and
training (:mod:`edge.engine.model_keeper`), curating the examples (:mod:`edge.engine.curation`). They run on the
loop thread only; the engine keeps the shared figures (example counts, problems, CPU).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import suppress
from typing import Any, Callable

import numpy as np

from edge.config import SLIDER_MAX, SLIDER_MIN, Config
from edge.engine.curation import Curation
from edge.listen.decision import DecisionPolicy
from edge.errors import CommandError, StoreError
from edge.events import EventBus
from edge.teach.hold import HoldJob
from edge.engine.hold_control import HoldControl
from edge.engine.hop_pipeline import HopPipeline
from edge.engine.loop import LoopActor
from edge.engine.model_keeper import ModelKeeper
from edge.engine.modes import Mode, ModeMachine
from edge.engine.problems import Problems
from edge.engine.state_report import state_report

log = logging.getLogger(__name__)

IDLE, COLLECTING, TRAINING, LISTENING = Mode.IDLE, Mode.COLLECTING, Mode.TRAINING, Mode.LISTENING
COUNTS_REFRESH_S = 10.0
"""How often the loop re-reads the example counts for the state report (the CLI may change the store)."""


def _hop_figure(name: str) -> Any:
    """A health figure the hop path keeps (:class:`HopPipeline`), read as the engine's own."""
    return property(lambda self: getattr(self.pipeline, name), doc=f"{name} (kept by the hop path)")


class Engine(LoopActor):
    """Owns the parts (mode, hop path, collection, model, curation) and the store, slider and policy they share."""

    def __init__(self, config: Config, *, store, registry, slider, led=None, bus: EventBus | None = None,
                 classifier=None, trainer: Callable | None = None):
        super().__init__()
        self.config = config
        self.store = store
        self.registry = registry
        self.slider = slider
        self.led = led
        self.bus = bus or EventBus()
        self.policy = DecisionPolicy(config.listen, config.classes)
        self._problems = Problems(self.bus)
        self.problems = self._problems.active
        """What is wrong but survivable (damaged model, store, class mismatch), by key; in the state."""
        self.modes = ModeMachine(self.bus, led)
        """The mode, shown on the LED; every change and refusal goes through it (:mod:`edge.engine.modes`)."""
        self.models = ModelKeeper(self, classifier, trainer)
        """The model in service, training a new one, rolling back (:mod:`edge.engine.model_keeper`)."""
        self.resume_listening = False
        """Listening comes back after the hold or training in progress (the state report shows it on)."""
        self.pipeline = HopPipeline(self)
        """The per-hop path: front end, windows, classifier, policy, slider (:mod:`edge.engine.hop_pipeline`)."""
        self.holds = HoldControl(self)
        """Collection: a button hold from press to stored, and "that was wrong" (:mod:`edge.engine.hold_control`)."""
        self.curation = Curation(self)
        """Deleting and moving examples (:mod:`edge.engine.curation`)."""
        self.started = time.monotonic()
        self._cpu_mark = (time.monotonic(), sum(os.times()[:2]))
        self.cpu_percent = 0.0
        self.counts: dict[str, int] = {}
        """Examples per label as the loop last read them: other threads (the state report) read this
        dict, replaced whole, never the store (its connection belongs to the loop thread)."""
        self._counts_t = -COUNTS_REFRESH_S
        self.tap: Any = None
        """Set by the web console: receives each block's new front-end frames (a copy, on this thread)."""
        self.audio_health: Callable[[], dict[str, Any]] = lambda: {}
        """Set by the service: the source's sample rate, ring overruns, errors."""
        with suppress(StoreError):             # an unavailable store: counts stay empty, the problem is reported
            self._refresh_counts()             # the constructing thread becomes the loop (adopt_thread)

    # ------------------------------------------------------------------ the loop's own work
    def poll(self) -> None:
        """Between blocks on the loop thread: run queued calls, tick the slider."""
        self.run_calls()
        self.slider.tick()
        now = time.monotonic()
        if now - self._counts_t >= COUNTS_REFRESH_S:
            # NOTE: the CLI may change the store under a running daemon (dataset import/clear)
            with suppress(StoreError):
                self._refresh_counts()
        mark_t, mark_cpu = self._cpu_mark
        if now - mark_t >= 2.0:
            cpu = sum(os.times()[:2])
            self.cpu_percent = 100.0 * (cpu - mark_cpu) / (now - mark_t)
            self._cpu_mark = (now, cpu)

    def _refresh_counts(self) -> dict[str, int]:
        """Read the store's counts on the loop thread and publish them to the state report."""
        self._counts_t = time.monotonic()
        counts = dict(self.store.counts())
        self.counts = counts
        return counts

    # ------------------------------------------------------------------ the parts' state, read as the engine's
    hops = _hop_figure("hops")
    samples_in = _hop_figure("samples_in")
    level_dbfs = _hop_figure("level_dbfs")
    classify_us = _hop_figure("classify_us")
    hop_us = _hop_figure("hop_us")
    last_label = _hop_figure("last_label")
    last_score = _hop_figure("last_score")

    def process(self, samples: np.ndarray) -> None:
        """Feed new audio; runs collection / classification for every completed hop."""
        self.pipeline.process(samples)

    @property
    def hold(self) -> HoldJob | None:
        """The button hold in progress (:attr:`HoldControl.job`); read it once, the loop may end it."""
        return self.holds.job

    @property
    def mode(self) -> Mode:
        """The current mode (changed only by :meth:`ModeMachine.set`)."""
        return self.modes.mode

    @property
    def classifier(self) -> Any:
        """The model in service, or None (:attr:`ModelKeeper.classifier`)."""
        return self.models.classifier

    # ------------------------------------------------------------------ problems
    def report_problem(self, key: str, where: str, message: str) -> None:
        """Say it once (:mod:`edge.engine.problems`); events wait for :meth:`start_reporting`."""
        self._problems.report(key, where, message)

    def clear_problem(self, key: str) -> None:
        self._problems.clear(key)

    def start_reporting(self) -> None:
        """The service calls it once MQTT is subscribed: start-up problems go out now."""
        self._problems.start_reporting()

    # ------------------------------------------------------------------ requests (loop thread)
    def _check_label(self, label: str) -> None:
        if label not in self.config.labels:
            raise CommandError(f"unknown label {label!r}: configured labels are {', '.join(self.config.labels)}")

    # NOTE: the tests call these three handlers on the loop thread, under their names of old.
    def _listen(self, on: bool) -> dict[str, Any]:
        return self.models.listen(on)

    def _press_collect(self, label: str, source: str) -> dict[str, Any]:
        return self.holds.press(label, source)

    def _position(self, value: float, source: str) -> dict[str, Any]:
        return self.pipeline.set_position(value, source)

    # ------------------------------------------------------------------ the service's (loop thread)
    def begin(self) -> None:
        """At start, on the loop thread: listen if a model serves and ``listen.autostart``; else show the mode."""
        if self.models.can_listen() and self.config.listen.autostart:
            self.models.listen(True)
        else:
            self.modes.set(self.mode)

    def on_button(self, action: str, label: str | None = None) -> dict[str, Any]:
        """A button's request, on the loop thread (the service queues it from gpiozero's threads):
        ``press``/``release`` a class button, ``train``, ``discard`` the last hold, ``toggle`` listening."""
        ops: dict[str, Callable[[], dict[str, Any]]] = {
            "press": lambda: self.holds.press(str(label), "button"), "release": lambda: self.holds.stop(label),
            "train": self.models.train, "discard": self.curation.discard_last,
            "toggle": lambda: self.models.listen(self.mode != LISTENING)}
        if action not in ops:
            raise CommandError(f"unknown button action {action!r}")
        return ops[action]()

    # ------------------------------------------------------------------ DeviceControl (any thread)
    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    def collect_start(self, label: str, source: str = "mqtt") -> dict[str, Any]:
        return self.call(self.holds.start, label, source)

    def collect_stop(self, label: str) -> dict[str, Any]:
        return self.call(self.holds.stop, label)

    def collect_for(self, label: str, seconds: float, source: str = "mqtt") -> dict[str, Any]:
        if not 0 < seconds <= self.config.collect.max_hold_s:
            raise CommandError(f"seconds {seconds}: must be in (0, {self.config.collect.max_hold_s}] "
                               "(collect.max_hold_s)")
        return self.call(self.holds.start, label, source, seconds)

    def train(self) -> dict[str, Any]:
        return self.call(self.models.train)

    def false_move(self, source: str = "mqtt") -> dict[str, Any]:
        return self.call(self.holds.false_move, source)

    def set_listening(self, on: bool) -> dict[str, Any]:
        return self.call(self.models.listen, bool(on))

    def toggle_listening(self) -> dict[str, Any]:
        return self.call(lambda: self.models.listen(self.mode != LISTENING))

    def set_position(self, value: float, source: str = "mqtt") -> dict[str, Any]:
        if not SLIDER_MIN <= value <= SLIDER_MAX:
            raise CommandError(f"position {value}: must be between {SLIDER_MIN:g} and {SLIDER_MAX:g}")
        return self.call(self.pipeline.set_position, float(value), source)

    def set_threshold(self, value: float) -> dict[str, Any]:
        return self.call(self.pipeline.set_threshold, value)

    def delete_examples(self, label: str | None = None, session: str | None = None) -> dict[str, Any]:
        return self.call(self.curation.delete, label, session)

    def discard_last_session(self) -> dict[str, Any]:
        return self.call(self.curation.discard_last)

    def move_session(self, session: str, label: str) -> dict[str, Any]:
        return self.call(self.curation.move_session, session, label)

    def rollback_model(self) -> dict[str, Any]:
        return self.call(self.models.rollback)

    def snapshot(self) -> dict[str, Any]:
        """The retained ``state`` report (:mod:`edge.engine.state_report`). Safe from any thread (reads only)."""
        return state_report(self)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stop training (it checks the flag per batch), finish a hold, park the slider."""
        if self.holds.job is not None:
            self.holds.finish_here()
        self.models.stop()
