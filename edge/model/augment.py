"""What a room does to a taught sound, in the dB-window domain: a reverberant tail, a level, talk
behind it. Training uses it to vary the user's examples; the calibration uses it to judge how many
of the held-out sounds a threshold would still find when they are not heard as they were taught.

Pure numpy on [n, 3, 232] dB windows; no audio is rebuilt (a window's phase is gone)."""

from __future__ import annotations

import numpy as np

from edge.model.bank import levels_db, power_add_db

_LN10_10 = np.float32(np.log(10.0) / 10.0)


def reverb_db(x_db: np.ndarray, decay_db: np.ndarray, wet_db: np.ndarray) -> np.ndarray:
    """A reverberant tail in the power domain, frame by frame: tail(t) = a·(tail(t−1) + w·P(t−1)),
    a = −``decay_db`` per hop, w = ``wet_db`` (both [n, 1]). The frame before the window is taken as
    loud as its first: a window is cut from inside a sound more often than at its onset."""
    p = np.exp(np.asarray(x_db, np.float32) * _LN10_10)
    a = (10.0 ** (-np.asarray(decay_db) / 10.0)).astype(np.float32)
    w = (10.0 ** (np.asarray(wet_db) / 10.0)).astype(np.float32)
    out, tail, prev = np.empty_like(p), np.zeros_like(p[:, 0]), p[:, 0]
    for t in range(p.shape[1]):
        tail = a * (tail + w * prev)
        out[:, t] = p[:, t] + tail
        prev = p[:, t]
    return (10.0 * np.log10(out)).astype(np.float32)


def mix_db(x_db: np.ndarray, noise_db: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
    """``noise_db`` windows played ``snr_db`` ([n]) below each window's own level, behind it."""
    shift = levels_db(x_db) - np.asarray(snr_db, np.float32) - levels_db(noise_db)
    return power_add_db(x_db, noise_db + shift[:, None, None].astype(np.float32))


ROOM_GAIN_DB = (-12.0, 0.0)
ROOM_DECAY_DB = (2.0, 6.0)
ROOM_WET_DB = (-10.0, -3.0)
ROOM_SNR_DB = (10.0, 25.0)


def in_a_room(x_db: np.ndarray, starts: np.ndarray, noise_db: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Held-out windows as another room would bring them: each *sound* (windows ``starts[i]`` up
    to the next start) at a level within ``ROOM_GAIN_DB``, half of the sounds with a reverberant
    tail, half with bank sound (``noise_db``, any number of windows) behind them. Deterministic."""
    n = x_db.shape[0]
    if n == 0:
        return np.asarray(x_db, np.float32)
    rng = np.random.default_rng(seed)
    sound = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    k = starts.size
    gain, rev, mixed = rng.uniform(*ROOM_GAIN_DB, k), rng.random(k) < 0.5, rng.random(k) < 0.5
    decay, wet, snr = rng.uniform(*ROOM_DECAY_DB, k), rng.uniform(*ROOM_WET_DB, k), rng.uniform(*ROOM_SNR_DB, k)
    out = np.asarray(x_db, np.float32) + gain[sound][:, None, None].astype(np.float32)
    r = rev[sound]
    if r.any():
        out[r] = reverb_db(out[r], decay[sound][r][:, None], wet[sound][r][:, None])
    m = mixed[sound]
    if m.any() and noise_db is not None and noise_db.shape[0]:
        noise = noise_db[rng.integers(0, noise_db.shape[0], size=int(m.sum()))]
        out[m] = mix_db(out[m], noise, snr[sound][m])
    return out
