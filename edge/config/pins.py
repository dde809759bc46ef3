"""The ``[buttons]`` and ``[slider]`` sections (GPIO pins, the servo) and the check that no pin is used twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from edge.config.classes import ClassSpec
from edge.config.fields import NO_PIN, SLIDER_MAX, SLIDER_MIN, VALID_BCM, _doc


@dataclass(frozen=True)
class ButtonSettings:
    train: int = _doc("BCM pin of the Train button (hold for collect.discard_hold_s to discard the last session).",
                      default=23)
    listen: int = _doc("BCM pin of the Listen on/off button.", default=24)
    status_led: int = _doc("BCM pin of the status LED; -1 = none.", default=25)
    pull_up: bool = _doc("Buttons connect the pin to GND (internal pull-up).", default=True)
    debounce_s: float = _doc("Ignore button edges closer together than this, seconds.", default=0.05,
                             min=0.0, max=1.0)


@dataclass(frozen=True)
class SliderSettings:
    output: str = _doc("What shows the slider: servo, angular_servo, pwmled, or none.", default="servo",
                       choices=("servo", "angular_servo", "pwmled", "none"))
    pin: int = _doc("BCM pin of the servo signal (or the LED).", default=18)
    min_pulse_width: float = _doc("Servo pulse at position 0, seconds.", default=0.001, min=0.0001, max=0.01)
    max_pulse_width: float = _doc("Servo pulse at position 10, seconds.", default=0.002, min=0.0001, max=0.01)
    min_angle: float = _doc("angular_servo: angle at position 0, degrees.", default=-90.0, min=-360.0, max=360.0)
    max_angle: float = _doc("angular_servo: angle at position 10, degrees.", default=90.0, min=-360.0, max=360.0)
    initial: float = _doc("Position at first start (later starts restore the saved one), 0..10.", default=5.0,
                          min=SLIDER_MIN, max=SLIDER_MAX)
    detach_after_s: float = _doc("Stop driving the servo this long after the last move, so it does not hum; "
                                 "0 = never, seconds.", default=2.0, min=0.0, max=3600.0)

    def validate(self) -> list[str]:
        if self.min_pulse_width >= self.max_pulse_width:
            return [f"slider.min_pulse_width = {self.min_pulse_width} must be below slider.max_pulse_width = "
                    f"{self.max_pulse_width}"]
        return []


def check_pins(classes: Iterable[ClassSpec], buttons: ButtonSettings, slider: SliderSettings,
               problems: list[str]) -> None:
    """Every BCM pin is valid and used once (the buttons, the LED, the slider)."""
    used: dict[int, str] = {}
    pins = [(f"classes.{c.name}.button", c.button) for c in classes]
    pins += [("buttons.train", buttons.train), ("buttons.listen", buttons.listen),
             ("buttons.status_led", buttons.status_led)]
    if slider.output != "none":
        pins.append(("slider.pin", slider.pin))
    for where, pin in pins:
        if pin == NO_PIN:
            continue
        if pin not in VALID_BCM:
            problems.append(f"{where} = {pin}: BCM pins are 0..27, or -1 for none")
        elif pin in used:
            problems.append(f"{where} = {pin}: pin already used by {used[pin]}")
        else:
            used[pin] = where
