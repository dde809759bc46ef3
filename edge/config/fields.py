"""Constants every stage shares, and the field helper the section dataclasses are written with."""

from __future__ import annotations

from dataclasses import field
from typing import Any

#: BROWSER_FFT constants: fixed by the codelab, not configurable.
SAMPLE_RATE = 44_100
FFT_SIZE = 2048
NUM_BINS = 232
NUM_FRAMES = 3
SLIDER_MIN, SLIDER_MAX = 0.0, 10.0
"""The slider's range in slider units: the one place it is written (servo, MQTT, Home Assistant, config)."""

#: Bump when a key is renamed or removed (old keys stay accepted for one release).
CONFIG_VERSION = 1

# NOTE: a BCM pin value of -1 means "not connected" (TOML has no null).
NO_PIN = -1
VALID_BCM = range(0, 28)


def _doc(text: str, **kw: Any) -> Any:
    """A dataclass field with a default and a one-line doc (unit or range)."""
    default = kw.pop("default")
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"doc": text, **kw})
