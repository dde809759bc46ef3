"""Collection of one button hold, with the energy gate that keeps silence out of sound classes.

A hold mixes the sound with the quiet between repetitions. Labelling every window of the hold
(the codelab's way) teaches the model that quiet is ``left``, and the servo creeps in an empty
room. So, at the end of a hold, each window's level (band power, dB) is compared with the hold's own
floor: the ``floor_percentile`` of the hold's levels, or the ambient level just before the press
if that is lower (a continuous whistle has no quiet of its own). Windows at least ``gate_db``
above the floor are the sound; the rest are background (stored under the background class, or
dropped). The background class itself is never gated: its quiet *is* the example.

Deciding at release (not per hop) is what lets the floor come from the whole hold; the windows
are committed in one store transaction then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.audio.spectrogram import window_levels_db
from edge.config import NUM_BINS, NUM_FRAMES, CollectSettings


@dataclass(frozen=True)
class HoldResult:
    label: str
    sound: np.ndarray
    """[n, 3, 232] windows kept under ``label``."""
    quiet: np.ndarray
    """[m, 3, 232] windows the gate judged background."""
    floor_db: float
    threshold_db: float
    truncated: bool
    """The hold ran past collect.max_hold_s and later windows were not kept."""

    def to_store(self, settings: CollectSettings, background: str | None) -> list[tuple[str | None, np.ndarray]]:
        """What the store gets, in one transaction: the sound, and the quiet as background when
        ``collect.quiet_to_background`` (and a background class) says so — else none of it."""
        keep_quiet = settings.quiet_to_background and background is not None
        return [(self.label, self.sound), (background, self.quiet if keep_quiet else self.quiet[:0])]


class HoldCollector:
    """Accumulates the windows of one hold; :meth:`finish` applies the gate."""

    def __init__(self, settings: CollectSettings, label: str, gated: bool, max_windows: int,
                 ambient_levels: np.ndarray | None = None):
        self.settings = settings
        self.label = label
        self.gated = gated and settings.gate
        self.max_windows = max_windows
        self.ambient = np.asarray(ambient_levels if ambient_levels is not None else [], dtype=np.float64)
        self._windows = np.empty((max_windows, NUM_FRAMES, NUM_BINS), dtype=np.float32)
        self._levels = np.empty(max_windows, dtype=np.float64)
        self.count = 0
        self.truncated = False

    def add(self, window: np.ndarray, level_db: float) -> bool:
        """Keep one window; False once the hold is over its length limit."""
        if self.count >= self.max_windows:
            self.truncated = True
            return False
        self._windows[self.count] = window
        self._levels[self.count] = level_db
        self.count += 1
        return True

    def floor(self) -> float:
        levels = _audible(self._levels[:self.count])
        if levels.size == 0:
            return float("nan")
        hold_floor = float(np.percentile(levels, self.settings.floor_percentile))
        ambient = _audible(self.ambient)
        if ambient.size:
            return min(hold_floor, float(np.median(ambient)))
        return hold_floor

    def finish(self) -> HoldResult:
        windows = self._windows[:self.count].copy()
        if not self.gated or self.count == 0:
            empty = np.empty((0, NUM_FRAMES, NUM_BINS), dtype=np.float32)
            return HoldResult(self.label, windows, empty, float("nan"), float("nan"), self.truncated)
        floor = self.floor()
        threshold = floor + self.settings.gate_db
        loud = self._levels[:self.count] >= threshold
        return HoldResult(self.label, windows[loud], windows[~loud], floor, threshold, self.truncated)


DIGITAL_SILENCE_DB = -150.0
"""Window levels below this are exact zeros from the source (a muted or idle stream, the front
end's −160 dB clamp), not a room: no microphone is that quiet. They are left out of the floor —
measured on a PulseAudio monitor, idle zeros before the first snap made the floor −160 dB and
the gate kept every window of the hold (100 'left' windows for three snaps)."""


def _audible(levels: np.ndarray) -> np.ndarray:
    real = levels[levels > DIGITAL_SILENCE_DB]
    return real if real.size else levels


def gate_windows(settings: CollectSettings, label: str, gated: bool, windows: np.ndarray,
                 levels: np.ndarray | None = None) -> HoldResult:
    """Gate a whole recording at once: exactly what a hold over the same windows stores."""
    collector = HoldCollector(settings, label, gated, max(1, windows.shape[0]))
    if levels is None:
        levels = window_levels_db(windows) if len(windows) else np.empty(0)
    for w, lv in zip(windows, levels):
        collector.add(w, float(lv))
    return collector.finish()
