"""Collection of one button hold, with the energy gate that keeps silence out of sound classes.

A hold mixes the sound with the quiet between repetitions. Labelling every window of the hold
(the codelab's way) teaches the model that quiet is ``left``, and the servo creeps in an empty
room. So, at the end of a hold, each window's level (band power, dB) is compared with the hold's own
floor: the ``floor_percentile`` of the hold's levels, or the ambient level just before the press
if that is lower (a continuous whistle has no quiet of its own). Windows at least ``gate_db``
above the floor are the sound; the rest are background (stored under the background class, or
dropped). The background class itself is never gated: its quiet *is* the example.
Windows of exact digital zeros (a muted or idle stream) are stored under no class, not even the
background: no room is that quiet. One collection stores at most ``collect.max_windows_per_collection``
windows, the earliest; a long file says how many it skipped.

Deciding at release (not per hop) is what lets the floor come from the whole hold; the windows
are committed in one store transaction then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from edge.audio.spectrogram import stream_windows, window_levels_db
from edge.config import NUM_BINS, NUM_FRAMES, CollectSettings
from edge.errors import WavError

log = logging.getLogger(__name__)


_NO_POSITIONS = np.empty(0, dtype=np.int64)


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
    sound_at: np.ndarray = field(default_factory=lambda: _NO_POSITIONS)
    """Position in the hold of each ``sound`` window (ascending): the cap keeps the earliest."""
    quiet_at: np.ndarray = field(default_factory=lambda: _NO_POSITIONS)
    silent: int = 0
    """Windows of digital zeros, stored under no class."""
    gated: bool = True
    """False: the background class or collect.gate = false (floor_db is then nan)."""

    def to_store(self, settings: CollectSettings, background: str | None) -> list[tuple[str | None, np.ndarray]]:
        """What the store gets, in one transaction: the sound, and the quiet as background when
        ``collect.quiet_to_background`` (and a background class) says so — else none of it; at
        most ``collect.max_windows_per_collection`` of them, the earliest."""
        quiet = self.quiet if self._keep_quiet(settings, background) else self.quiet[:0]
        n_sound, n_quiet, skipped = self._capped(settings, background)
        if skipped:
            log.warning("collection of %r stopped at collect.max_windows_per_collection = %d windows: "
                        "%d later windows skipped", self.label, settings.max_windows_per_collection, skipped)
        return [(self.label, self.sound[:n_sound]), (background, quiet[:n_quiet])]

    def skipped(self, settings: CollectSettings, background: str | None) -> int:
        """Storable windows the cap leaves out."""
        return self._capped(settings, background)[2]

    def _keep_quiet(self, settings: CollectSettings, background: str | None) -> bool:
        return settings.quiet_to_background and background is not None

    def _capped(self, settings: CollectSettings, background: str | None) -> tuple[int, int, int]:
        # NOTE: a result built without positions counts its sound first, then its quiet.
        sound_at = self.sound_at if len(self.sound_at) == len(self.sound) else np.arange(len(self.sound))
        quiet_at = self.quiet_at if len(self.quiet_at) == len(self.quiet) else \
            np.arange(len(self.quiet)) + len(self.sound)
        if not self._keep_quiet(settings, background):
            quiet_at = quiet_at[:0]
        return cap_earliest(sound_at, quiet_at, settings.max_windows_per_collection)


def cap_earliest(sound_at: np.ndarray, quiet_at: np.ndarray, limit: int) -> tuple[int, int, int]:
    """How many of each (ascending) group are among the ``limit`` earliest; and how many are not."""
    total = len(sound_at) + len(quiet_at)
    if total <= limit:
        return len(sound_at), len(quiet_at), 0
    cutoff = np.sort(np.concatenate((sound_at, quiet_at)))[limit - 1]
    n_sound = int(np.searchsorted(sound_at, cutoff, side="right"))
    return n_sound, limit - n_sound, total - limit


@dataclass(frozen=True)
class Gate:
    """The gate's verdict on each window of a hold, from the window levels alone."""

    floor_db: float
    threshold_db: float
    sound: np.ndarray
    """bool per window: stored under the hold's label."""
    quiet: np.ndarray
    """bool per window: background (stored as such, or dropped)."""
    silent: np.ndarray
    """bool per window: digital zeros, stored nowhere."""
    gated: bool


def gate_levels(settings: CollectSettings, gated: bool, levels: np.ndarray,
                ambient: np.ndarray | None = None) -> Gate:
    """The one rule for a button hold, `collect --from-wav` and a hold over MQTT."""
    levels = np.asarray(levels, dtype=np.float64)
    silent = levels <= DIGITAL_SILENCE_DB
    if not (gated and settings.gate) or levels.size == 0:
        return Gate(float("nan"), float("nan"), ~silent, np.zeros_like(silent), silent, False)
    floor = hold_floor(settings, levels, ambient)
    threshold = floor + settings.gate_db
    loud = levels >= threshold
    return Gate(floor, threshold, loud & ~silent, ~loud & ~silent, silent, True)


def hold_floor(settings: CollectSettings, levels: np.ndarray, ambient: np.ndarray | None = None) -> float:
    audible = _audible(levels)
    if audible.size == 0:
        return float("nan")
    floor = float(np.percentile(audible, settings.floor_percentile))
    quiet_before = _audible(np.asarray(ambient if ambient is not None else [], dtype=np.float64))
    if quiet_before.size:
        return min(floor, float(np.median(quiet_before)))
    return floor


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
        return hold_floor(self.settings, self._levels[:self.count], self.ambient)

    def finish(self) -> HoldResult:
        windows = self._windows[:self.count]
        gate = gate_levels(self.settings, self.gated, self._levels[:self.count], self.ambient)
        return HoldResult(self.label, windows[gate.sound], windows[gate.quiet], gate.floor_db, gate.threshold_db,
                          self.truncated, np.flatnonzero(gate.sound), np.flatnonzero(gate.quiet),
                          int(gate.silent.sum()), gate.gated)


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


@dataclass(frozen=True)
class FileCollection:
    """What one file of `collect --from-wav` stored, for the report."""

    windows: int
    """Windows in the file."""
    stored: int
    """Stored under the label."""
    background: int
    """Quiet windows stored under the background class."""
    dropped: int
    """Quiet windows not stored (collect.quiet_to_background = false, or no background class)."""
    silent: int
    """Digital zeros, stored nowhere."""
    skipped: int
    """Storable windows left out by collect.max_windows_per_collection."""
    floor_db: float
    threshold_db: float
    gated: bool


def collect_file(store, settings: CollectSettings, wav, label: str, gated: bool, background: str | None,
                 source: str, session: str, hop: int, db_floor: float) -> FileCollection:
    """Store what a hold over the whole file stores, in bounded memory: a first pass over the file
    takes the window levels (8 bytes a window) for the hold's floor, a second gathers the windows
    kept — at most ``max_windows_per_collection`` — and they go in ONE transaction, as a hold's do."""
    levels_parts = [window_levels_db(w) for w in stream_windows(wav.blocks(), hop, db_floor)]
    levels = np.concatenate(levels_parts) if levels_parts else np.empty(0)
    gate = gate_levels(settings, gated, levels)
    keep_quiet = settings.quiet_to_background and background is not None
    sound_at = np.flatnonzero(gate.sound)
    quiet_at = np.flatnonzero(gate.quiet) if keep_quiet else _NO_POSITIONS
    n_sound, n_quiet, skipped = cap_earliest(sound_at, quiet_at, settings.max_windows_per_collection)
    sound_at, quiet_at = sound_at[:n_sound], quiet_at[:n_quiet]
    sound, quiet = _gather(wav, hop, db_floor, sound_at, quiet_at)
    result = HoldResult(label, sound, quiet, gate.floor_db, gate.threshold_db, False, sound_at, quiet_at,
                        int(gate.silent.sum()), gate.gated)
    stored, moved = store.add_groups(result.to_store(settings, background), source, session)
    return FileCollection(len(levels), stored, moved, int(gate.quiet.sum()) if not keep_quiet else 0,
                          result.silent, skipped, gate.floor_db, gate.threshold_db, gate.gated)


def _gather(wav, hop: int, db_floor: float, sound_at: np.ndarray,
            quiet_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The second pass: the windows at these positions, stopping after the last one needed."""
    sound = np.empty((len(sound_at), NUM_FRAMES, NUM_BINS), dtype=np.float32)
    quiet = np.empty((len(quiet_at), NUM_FRAMES, NUM_BINS), dtype=np.float32)
    last = max(sound_at[-1] if len(sound_at) else -1, quiet_at[-1] if len(quiet_at) else -1)
    start = 0
    for windows in stream_windows(wav.blocks(), hop, db_floor):
        if start > last:
            break
        end = start + windows.shape[0]
        for out, at in ((sound, sound_at), (quiet, quiet_at)):
            lo, hi = np.searchsorted(at, start), np.searchsorted(at, end)
            out[lo:hi] = windows[at[lo:hi] - start]
        start = end
    if start <= last:   # NOTE: np.empty rows would be stored as examples: never let that happen
        raise WavError(f"{getattr(wav, 'path', 'audio')}: the file changed while it was being collected; "
                       "nothing was stored")
    return sound, quiet


class InMemory:
    """Samples already in memory (a recording from the mic), read like a :class:`WavFile`."""

    def __init__(self, samples: np.ndarray, block: int = 1 << 16):
        self.samples, self.block = samples, block

    def blocks(self):
        for i in range(0, self.samples.shape[0], self.block):
            yield self.samples[i:i + self.block]
