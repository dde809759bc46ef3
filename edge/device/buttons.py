"""The button panel: one button per class (collect while held), Train, Listen.

gpiozero calls ``when_pressed`` / ``when_released`` from its pin-factory thread (on mock pins,
synchronously in the thread that drives the pin). The panel turns them into small event objects
and hands them to ``on_event`` — the service queues them to the engine's loop thread.

Debounce is done here, not by gpiozero's ``bounce_time`` (mock pins ignore it, and tests must be
able to exercise it): an edge is accepted at once, and any opposite edge inside ``debounce_s``
is not trusted — the pin is re-read when the window closes and only a real change counts.

Train button: a short press trains; holding it for ``collect.discard_hold_s`` discards the last
collection session (the "oops, that was wrong" gesture).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from edge.config import NO_PIN, Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectPressed:
    label: str


@dataclass(frozen=True)
class CollectReleased:
    label: str


@dataclass(frozen=True)
class TrainRequested:
    pass


@dataclass(frozen=True)
class DiscardRequested:
    pass


@dataclass(frozen=True)
class ListenToggled:
    pass


def start_timer(delay_s: float, fn: Callable[[], None]) -> threading.Timer:
    """Run ``fn`` once, ``delay_s`` from now, on a daemon thread; the result has ``cancel()``."""
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True
    timer.start()
    return timer


class DebouncedButton:
    """One gpiozero Button with software debounce; calls ``on_change(pressed: bool)``.

    ``clock`` and ``schedule`` (how to run a callback later) are injectable so tests drive time
    by hand instead of sleeping through debounce windows and hold times."""

    def __init__(self, pin: int, debounce_s: float, pull_up: bool, on_change: Callable[[bool], None],
                 pin_factory=None, clock: Callable[[], float] = time.monotonic,
                 schedule: Callable[[float, Callable[[], None]], Any] = start_timer):
        from gpiozero import Button
        self._button = Button(pin, pull_up=pull_up, pin_factory=pin_factory)
        self.pin = pin
        self._debounce = debounce_s
        self._on_change = on_change
        self._clock = clock
        self._schedule = schedule
        self._lock = threading.Lock()
        self.pressed = False
        self._last_edge = -1e9
        self._timer: Any = None
        self._button.when_pressed = lambda: self._edge(True)
        self._button.when_released = lambda: self._edge(False)

    def _edge(self, pressed: bool) -> None:
        with self._lock:
            if pressed == self.pressed:
                return
            now = self._clock()
            if now - self._last_edge < self._debounce:
                # A bounce, or a real change too quick to trust: look again when the window closes.
                if self._timer is None:
                    self._timer = self._schedule(self._last_edge + self._debounce - now, self._settle)
                return
            self._accept(pressed, now)
        self._on_change(pressed)

    def _accept(self, pressed: bool, now: float) -> None:
        self.pressed = pressed
        self._last_edge = now

    def _settle(self) -> None:
        with self._lock:
            self._timer = None
            if self._button.closed:
                return
            actual = bool(self._button.is_pressed)
            if actual == self.pressed:
                return
            self._accept(actual, self._clock())
        self._on_change(actual)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._button.close()


class ButtonPanel:
    def __init__(self, config: Config, on_event: Callable[[object], None], pin_factory=None,
                 clock: Callable[[], float] = time.monotonic,
                 schedule: Callable[[float, Callable[[], None]], Any] = start_timer):
        self._on_event = on_event
        self._clock = clock
        self._discard_hold = config.collect.discard_hold_s
        self._train_down_at: float | None = None
        b = config.buttons
        self.buttons: list[DebouncedButton] = []

        def add(pin: int, fn: Callable[[bool], None]) -> None:
            if pin != NO_PIN:
                self.buttons.append(DebouncedButton(pin, b.debounce_s, b.pull_up, fn, pin_factory=pin_factory,
                                                    clock=clock, schedule=schedule))

        try:
            def collect_edge(label: str) -> Callable[[bool], None]:
                return lambda down: on_event(CollectPressed(label) if down else CollectReleased(label))

            for spec in config.classes:
                add(spec.button, collect_edge(spec.name))
            add(b.train, self._train_edge)
            add(b.listen, lambda down: on_event(ListenToggled()) if down else None)
        except BaseException:
            self.close()
            raise
        log.info("buttons: %s", ", ".join(f"GPIO{x.pin}" for x in self.buttons))

    def _train_edge(self, down: bool) -> None:
        now = self._clock()
        if down:
            self._train_down_at = now
            return
        held = now - (self._train_down_at or now)
        self._train_down_at = None
        self._on_event(DiscardRequested() if held >= self._discard_hold else TrainRequested())

    def close(self) -> None:
        for button in self.buttons:
            button.close()
        self.buttons.clear()
