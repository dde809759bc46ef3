"""Which gpiozero pin factory drives the hardware.

On a Pi, gpiozero's own configuration decides (``GPIOZERO_PIN_FACTORY``: lgpio on a Pi 5 and
Bookworm, pigpio for jitter-free servo PWM). ``--simulate`` (or ``GPIOZERO_PIN_FACTORY=mock``)
gives gpiozero's MockFactory with **PWM-capable** mock pins: plain MockPin cannot drive a Servo.
"""

from __future__ import annotations

import importlib
import logging
import os

from edge.errors import HardwareError

log = logging.getLogger(__name__)


def mock_factory():
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    return MockFactory(pin_class=MockPWMPin)


FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}
"""gpiozero's own factories, in the order gpiozero itself tries them when GPIOZERO_PIN_FACTORY is unset."""


def make_pin_factory(simulate: bool):
    """The factory every device of this process uses (passed explicitly, never a global).

    Built from gpiozero's public factory classes the way gpiozero would choose one (its
    ``Device._default_pin_factory`` is private): the one GPIOZERO_PIN_FACTORY names, else the
    first of lgpio, RPi.GPIO, pigpio and native that loads on this board.
    """
    wanted = os.environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower()
    if simulate or wanted == "mock":
        return mock_factory()
    if wanted and wanted not in FACTORIES:
        raise HardwareError(f"GPIOZERO_PIN_FACTORY={wanted!r}: use one of {', '.join(FACTORIES)} or mock "
                            "(or unset it to let the first that works be chosen)")
    tried = []
    for name in [wanted] if wanted else list(FACTORIES):
        module, cls = FACTORIES[name]
        try:
            factory = getattr(importlib.import_module(module), cls)()
        except Exception as exc:  # noqa: BLE001 - ImportError, BadPinFactory, no GPIO chip: try the next
            tried.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        log.info("GPIO pin factory: %s", name)
        return factory
    raise HardwareError(f"no GPIO pin factory works here ({'; '.join(tried)}): not a Raspberry Pi, or "
                        "lgpio/pigpio missing: use --simulate, or install python3-lgpio / set GPIOZERO_PIN_FACTORY")
