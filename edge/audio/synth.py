"""Scripted test sounds: finger snaps, whistles, talk-like babble, noise, silence.

Used by ``SyntheticSource`` (demo, ``run --simulate``), the demo story and the tests. A script is a
comma-separated list of ``kind[:seconds]`` items, e.g. ``"noise:1, snap, gap:0.5, whistle:0.4"``;
:func:`render` returns the signal and the ground-truth onsets so a test can check decisions.

Kinds: ``snap`` (left in the demo), ``whistle`` (right), ``babble`` (talk-like harmonic bursts),
``gap``/``silence`` (background only), ``noise`` (louder broadband noise). A low background noise
(``floor_db`` dBFS) runs under everything, as in a real room.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.config import SAMPLE_RATE

DEFAULT_DURATIONS = {"snap": 0.25, "whistle": 0.4, "babble": 1.0, "gap": 0.5, "silence": 0.5, "noise": 1.0}
#: Which class each synthetic kind stands for in the demo and the tests.
DEMO_LABELS = {"snap": "left", "whistle": "right"}


@dataclass(frozen=True)
class Onset:
    kind: str
    start: float
    """Seconds from the start of the rendered signal."""
    duration: float


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def snap(rng: np.random.Generator, seconds: float, level_db: float = -12.0) -> np.ndarray:
    """A finger snap: a broadband click with a ~15 ms decay, then a short low body resonance.

    NOTE: the body sits at 500–900 Hz, well below the whistles (1.2–2.2 kHz): with a 2 kHz body a
    fading whistle tail looked like a snap and the demo model confused the two."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    click = rng.standard_normal(n) * np.exp(-t / 0.012)
    body = np.sin(2 * np.pi * rng.uniform(500, 900) * t) * np.exp(-t / 0.03) * 0.5
    x = click + body
    return (x / (np.max(np.abs(x)) + 1e-9) * _db(level_db + rng.uniform(-3, 3))).astype(np.float32)


def whistle(rng: np.random.Generator, seconds: float, level_db: float = -18.0) -> np.ndarray:
    """A whistle: a 1.2–2.2 kHz tone that glides (±15%) with vibrato, soft attack and release.

    NOTE: the glide matters: with a steady pitch each training whistle covered ~2 FFT bins, and a
    test whistle pitched between them was heard as noise (measured); people do not hold a pitch."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(1200, 2200)
    glide = rng.uniform(-0.15, 0.15)
    freq = f0 * (1 + glide * (t / max(seconds, 1e-3) - 0.5) + 0.015 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    env = np.minimum(1.0, np.minimum(t / 0.03, (seconds - t) / 0.05).clip(0))
    x = np.sin(phase) * env + 0.02 * rng.standard_normal(n) * env
    return (x * _db(level_db + rng.uniform(-3, 3))).astype(np.float32)


def babble(rng: np.random.Generator, seconds: float, level_db: float = -24.0) -> np.ndarray:
    """Talk-like: syllables of a 100–250 Hz harmonic voice with moving formants."""
    n = int(seconds * SAMPLE_RATE)
    x = np.zeros(n, dtype=np.float64)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
        syl = min(syl, n - pos)
        t = np.arange(syl) / SAMPLE_RATE
        f0 = rng.uniform(100, 250)
        tone = sum(np.sin(2 * np.pi * f0 * h * t) * np.exp(-((f0 * h - rng.uniform(300, 2500)) / 800) ** 2)
                   for h in range(1, 20))
        x[pos:pos + syl] = tone * np.hanning(syl)
        pos += syl + int(rng.uniform(0.02, 0.1) * SAMPLE_RATE)
    peak = np.max(np.abs(x)) + 1e-9
    return (x / peak * _db(level_db)).astype(np.float32)


def noise(rng: np.random.Generator, seconds: float, level_db: float = -40.0) -> np.ndarray:
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * _db(level_db)).astype(np.float32)


def parse_script(script: str) -> list[tuple[str, float]]:
    """``"snap, gap:0.5"`` → ``[("snap", 0.25), ("gap", 0.5)]``; ValueError names a bad item."""
    items = []
    for raw in script.split(","):
        raw = raw.strip()
        if not raw:
            continue
        kind, _, dur = raw.partition(":")
        kind = kind.strip()
        if kind not in DEFAULT_DURATIONS:
            raise ValueError(f"unknown sound {kind!r} in script; use {', '.join(DEFAULT_DURATIONS)}")
        try:
            seconds = float(dur) if dur else DEFAULT_DURATIONS[kind]
        except ValueError:
            raise ValueError(f"bad duration {dur!r} for {kind!r}; use e.g. {kind}:0.5") from None
        if not 0 < seconds <= 600:
            raise ValueError(f"duration {seconds} for {kind!r} must be in (0, 600] seconds")
        items.append((kind, seconds))
    if not items:
        raise ValueError("empty sound script")
    return items


_MAKERS = {"snap": snap, "whistle": whistle, "babble": babble}


def render(script: str | list[tuple[str, float]], seed: int = 0, floor_db: float = -60.0,
           gain_db: float = 0.0) -> tuple[np.ndarray, list[Onset]]:
    """The whole script as 44.1 kHz float32 audio, with the onset of every sound in it."""
    items = parse_script(script) if isinstance(script, str) else script
    rng = np.random.default_rng(seed)
    parts, onsets, pos = [], [], 0
    for kind, seconds in items:
        if kind in _MAKERS:
            seg = _MAKERS[kind](rng, seconds)
            onsets.append(Onset(kind, pos / SAMPLE_RATE, seconds))
        elif kind == "noise":
            seg = noise(rng, seconds, level_db=-30.0)
            onsets.append(Onset(kind, pos / SAMPLE_RATE, seconds))
        else:
            seg = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
        parts.append(seg)
        pos += seg.shape[0]
    signal = np.concatenate(parts)
    signal += np.asarray(rng.standard_normal(signal.shape[0]) * _db(floor_db), dtype=np.float32)
    if gain_db:
        signal *= _db(gain_db)
    return np.clip(signal, -1.0, 1.0).astype(np.float32), onsets


SYNTHETIC_ROOM_TRAINING = {"gain_jitter_db": 0.0, "bank": False}
"""``[train]`` settings for a device taught and tested on these synthetic scenes (the demo, its
tests): their room has no level changes and its only talk is synthetic babble. Gain jitter made
that babble step the servo in 2 of 3 seeded runs; the background bank (real talk and music)
teaches that pure tones are music, and the synthetic whistle is a pure tone — its threshold
calibrated to 0.95–0.998 and one whistle of five was missed. Real rooms want both on."""
