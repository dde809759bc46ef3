"""Which gpiozero pin factory drives the hardware.

On a Pi, gpiozero's own configuration decides (``GPIOZERO_PIN_FACTORY``: lgpio on a Pi 5 and
Bookworm, pigpio for jitter-free servo PWM). ``--simulate`` (or ``GPIOZERO_PIN_FACTORY=mock``)
gives gpiozero's MockFactory with **PWM-capable** mock pins: plain MockPin cannot drive a Servo.
"""

from __future__ import annotations

import logging
import os

from edge.errors import HardwareError

log = logging.getLogger(__name__)


def mock_factory():
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    return MockFactory(pin_class=MockPWMPin)


def make_pin_factory(simulate: bool):
    """The factory every device of this process uses (passed explicitly, never a global)."""
    if simulate or os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock":
        return mock_factory()
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory
    try:
        if Device.pin_factory is None:
            Device.pin_factory = Device._default_pin_factory()
        return Device.pin_factory
    except BadPinFactory:
        raise HardwareError("no GPIO pin factory works here (not a Raspberry Pi, or lgpio/pigpio missing): "
                            "use --simulate, or install python3-lgpio / set GPIOZERO_PIN_FACTORY") from None
