"""The slider: a position 0..10 shown by a servo (or a PWM LED), persisted across restarts.

The position is the truth; the output only shows it. Moves clamp to 0..10. The servo is detached
(no pulses) ``detach_after_s`` after the last move so a cheap servo does not jitter or hum all day.
The position is saved at most every ``save_interval`` seconds (SD cards wear) and on park/close,
atomically, so a power cut loses at most the last few seconds of moves.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

from edge.config import SLIDER_MAX, SLIDER_MIN, SliderSettings
from edge.errors import HardwareError
from edge.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

LO, HI = SLIDER_MIN, SLIDER_MAX


class Output:
    """Shows a position; ``detach`` stops driving it. Backends wrap one gpiozero device."""

    def show(self, position: float) -> None: ...
    def detach(self) -> None: ...
    def close(self) -> None: ...


class NullOutput(Output):
    """No hardware (``slider.output = none``, and the file-replay commands)."""

    def __init__(self):
        self.shown: list[float] = []

    def show(self, position: float) -> None:
        self.shown.append(position)


class ServoOutput(Output):
    """gpiozero Servo: position 0..10 → value −1..1 → min..max pulse width at 50 Hz."""

    def __init__(self, settings: SliderSettings, pin_factory=None, angular: bool = False):
        from gpiozero import AngularServo, Servo
        from gpiozero.exc import GPIOZeroError
        kw = dict(initial_value=None, min_pulse_width=settings.min_pulse_width,
                  max_pulse_width=settings.max_pulse_width, pin_factory=pin_factory)
        try:
            if angular:
                self._dev = AngularServo(settings.pin, min_angle=settings.min_angle, max_angle=settings.max_angle,
                                         initial_angle=None, **kw)
                self._dev.value = None
            else:
                self._dev = Servo(settings.pin, **kw)
        except GPIOZeroError as exc:
            raise HardwareError(f"slider.pin = {settings.pin}: cannot drive a servo ({exc}); with mock pins set "
                                "GPIOZERO_MOCK_PIN_CLASS=mockpwmpin") from None

    def show(self, position: float) -> None:
        self._dev.value = position / 5.0 - 1.0

    def detach(self) -> None:
        self._dev.value = None

    def close(self) -> None:
        self._dev.close()


class PwmLedOutput(Output):
    """A PWM LED whose brightness is the position (0 = off, 10 = full)."""

    def __init__(self, settings: SliderSettings, pin_factory=None):
        from gpiozero import PWMLED
        self._dev = PWMLED(settings.pin, pin_factory=pin_factory)

    def show(self, position: float) -> None:
        self._dev.value = position / HI

    def close(self) -> None:
        self._dev.close()


def make_output(settings: SliderSettings, pin_factory=None) -> Output:
    if settings.output == "servo":
        return ServoOutput(settings, pin_factory)
    if settings.output == "angular_servo":
        return ServoOutput(settings, pin_factory, angular=True)
    if settings.output == "pwmled":
        return PwmLedOutput(settings, pin_factory)
    return NullOutput()


class Slider:
    def __init__(self, output: Output, settings: SliderSettings, state_file: Path | None,
                 save_interval: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.output = output
        self.settings = settings
        self.state_file = Path(state_file) if state_file else None
        self.save_interval = save_interval
        self._clock = clock
        self.position = self._restore()
        self._saved = self.position
        self._last_save = clock()
        self._last_move: float | None = None
        self._attached = False
        self._save_error: str | None = None

    def _restore(self) -> float:
        if self.state_file is None or not self.state_file.is_file():
            return self.settings.initial
        try:
            value = float(json.loads(self.state_file.read_text())["position"])
            if not LO <= value <= HI:
                raise ValueError(value)
            return value
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable saved position (%s); starting at %.1f", self.state_file, exc,
                        self.settings.initial)
            return self.settings.initial

    def _move(self, value: float) -> float:
        # NOTE: round away float dust so ten steps of 0.1 land exactly on a whole number.
        self.position = round(min(HI, max(LO, value)), 6)
        self.output.show(self.position)
        self._attached = True
        self._last_move = self._clock()
        return self.position

    def step(self, delta: float) -> float:
        return self._move(self.position + delta)

    def set(self, value: float) -> float:
        return self._move(value)

    def tick(self, now: float | None = None) -> None:
        """Called between audio blocks: detach an idle servo, save a changed position now and then."""
        now = self._clock() if now is None else now
        detach = self.settings.detach_after_s
        if self._attached and detach > 0 and self._last_move is not None and now - self._last_move >= detach:
            self.output.detach()
            self._attached = False
        if self.position != self._saved and now - self._last_save >= self.save_interval:
            self.save()

    def save(self) -> None:
        self._last_save = self._clock()
        if self.state_file is None:
            return
        try:
            atomic_write_bytes(self.state_file, json.dumps({"position": self.position}).encode())
            self._saved = self.position
            self._save_error = None
        except OSError as exc:
            # NOTE: once per cause: on a read-only state dir every move would log it again
            (log.debug if exc.strerror == self._save_error else log.error)(
                "cannot save slider position to %s: %s", self.state_file, exc.strerror)
            self._save_error = exc.strerror

    def park(self) -> None:
        """On shutdown: save the position, stop driving the servo."""
        self.save()
        self.output.detach()
        self._attached = False

    def close(self) -> None:
        self.output.close()
