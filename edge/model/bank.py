"""The shipped background bank: windows of sounds nobody taught, mixed into every training.

A model taught from a few holds knows only its own room, so any new sound lands in a taught class
with a high score. Training with many negatives the user never recorded (talk in 13 languages,
music, instruments, effects — built by ``python -m edge.tooling.build_bank``) teaches it that
"unlike my examples" means background. Frames are stored as uint8 (0.5 dB steps) at a nominal
level; :meth:`Bank.windows` turns a start index into a [3, 232] dB window.

Clips are split once into a *training* part and a *calibration* part (every ``CALIB_EVERY``-th
clip): the calibration clips are never trained on, so the post-training false-move estimate is
measured on sounds the model did not see.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import NUM_FRAMES

log = logging.getLogger(__name__)

BANK_PATH = Path(__file__).resolve().parents[1] / "data" / "background_bank.npz"
CALIB_EVERY = 4
"""Every 4th clip (by its order in the bank, which mixes sources) is held out for calibration."""


@dataclass(frozen=True)
class Bank:
    frames: np.ndarray
    """[F, 232] uint8: dB = q / 2 − q_offset."""
    starts: np.ndarray
    """Valid window starts (three frames within one clip) of this part, int32."""
    clip_of_start: np.ndarray
    q_offset_db: float
    nominal_db: float

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def windows(self, starts: np.ndarray) -> np.ndarray:
        """dB windows [n, 3, 232] float32 beginning at the given frame indices."""
        idx = starts[:, None] + np.arange(NUM_FRAMES)[None, :]
        return self.frames[idx].astype(np.float32) * np.float32(0.5) - np.float32(self.q_offset_db)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.windows(self.starts[rng.integers(0, len(self), size=n)])

    def stream(self) -> np.ndarray:
        """Every window of this part in order: a continuous negative 'stream' of its clips."""
        return self.windows(self.starts)

    def clip_boundaries(self) -> np.ndarray:
        """Index (into :meth:`stream`) where a new clip starts."""
        return np.flatnonzero(np.diff(self.clip_of_start, prepend=-1) != 0)


def load_banks(path: str | Path | None = None) -> tuple[Bank, Bank] | None:
    """The shipped bank's (training, calibration) parts; None (and a warning) if it is missing.

    NOTE: read per training (~50 ms) and dropped after it: the daemon should not carry ~10 MB of
    frames between trainings."""
    path = Path(path or BANK_PATH)
    if not path.is_file():
        log.warning("background bank %s missing: training without it (more false moves on untaught sounds)", path)
        return None
    with np.load(path) as z:
        frames = z["frames"]
        clip_start = z["clip_start"].astype(np.int64)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    q_offset, nominal = float(meta.get("q_offset_db", 128.0)), float(meta.get("nominal_db", -30.0))
    ends = np.append(clip_start[1:], frames.shape[0])
    parts: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    for ci, (a, b) in enumerate(zip(clip_start, ends)):
        if b - a < NUM_FRAMES:
            continue
        starts, clips = parts[ci % CALIB_EVERY == 0]
        s = np.arange(a, b - NUM_FRAMES + 1, dtype=np.int64)
        starts.append(s)
        clips.append(np.full(s.shape, ci, np.int32))
    train, calib = (Bank(frames, np.concatenate(parts[k][0]), np.concatenate(parts[k][1]), q_offset, nominal)
                    for k in (False, True))
    return train, calib


_LUT_STEP = 0.05
_LUT = (10.0 * np.log10(1.0 + 10.0 ** (-np.arange(0, 40.0 + _LUT_STEP, _LUT_STEP) / 10.0))).astype(np.float32)
"""10·log10(1 + 10^(−d/10)) for d = 0 … 40 dB: what the quieter of two sounds adds to the louder."""


def power_add_db(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dB of the sum of two uncorrelated sounds' powers: how two sources mix in a spectrogram bin
    (on average — phase cross-terms cancel out), without going back to audio.

    NOTE: a table instead of logaddexp: training mixes ~10^7 bins per second of training and the
    transcendental functions were a third of its time; the table is exact to 0.01 dB."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    d = np.abs(a - b)
    idx = np.minimum(d * np.float32(1.0 / _LUT_STEP), np.float32(_LUT.size - 1)).astype(np.int32)
    return np.maximum(a, b) + _LUT[idx]


def levels_db(windows_db: np.ndarray) -> np.ndarray:
    """Band power of each [3, 232] window in dB (as spectrogram.window_levels_db, in float32)."""
    flat = windows_db.reshape(windows_db.shape[0], -1)
    return (10.0 * np.log10(np.mean(np.exp(flat * np.float32(np.log(10.0) / 10.0)), axis=1))).astype(np.float32)
