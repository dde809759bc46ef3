"""The status LED: one pattern per mode, so the device says what it is doing without a screen.

    idle        slow blink (0.1 s on every 2 s)     listening   on
    collecting  fast blink (0.1 / 0.1 s)            training    medium blink (0.4 / 0.4 s)
    error       three quick flashes, then the mode's pattern again
"""

from __future__ import annotations

import threading
import time

from edge.config import NO_PIN

PATTERNS = {
    "idle": (0.1, 1.9),
    "collecting": (0.1, 0.1),
    "training": (0.4, 0.4),
    "listening": None,     # steady on
}
ERROR_FLASH = (0.06, 0.06, 3)


class StatusLed:
    def __init__(self, pin: int, pin_factory=None):
        self._led = None
        self.mode: str | None = None
        self._timer: threading.Timer | None = None
        self._flash_until = 0.0
        if pin != NO_PIN:
            from gpiozero import LED
            self._led = LED(pin, pin_factory=pin_factory)

    def show(self, mode: str) -> None:
        if self._led is None:
            self.mode = mode
            return
        if mode == "error":
            on, off, n = ERROR_FLASH
            self._led.blink(on, off, n=n, background=True)
            self._flash_until = time.monotonic() + (on + off) * n
            return
        self.mode = mode
        wait = self._flash_until - time.monotonic()
        if wait > 0:
            # NOTE: let the error flash finish, then show the mode (never block the audio loop).
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(wait, self._apply)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._apply()

    def _apply(self) -> None:
        if self._led is None or self._led.closed:
            return
        pattern = PATTERNS.get(self.mode or "idle", PATTERNS["idle"])
        if pattern is None:
            self._led.on()
        else:
            self._led.blink(*pattern, background=True)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._led is not None:
            self._led.close()
