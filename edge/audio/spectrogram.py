"""The BROWSER_FFT front end, exactly as Chromium's AnalyserNode computes it for speech-commands.

Frame k covers samples ``[k·hop, k·hop + 2048)`` of the 44.1 kHz stream. Each frame is multiplied
by a *periodic* Blackman window (α = 0.16, divisor N — ``numpy.blackman`` is the symmetric one and
is up to 1.8 dB off), transformed with a real FFT, and reported as ``20·log10(|X[k]| / 2048)`` for
bins 0..231 (0–4,996 Hz). A window for the classifier is the newest 3 frames, shape [3, 232].

Digital silence gives ``-inf``; the browser drops such frames, we clamp to ``db_floor`` so that a
silent mic still yields (obviously quiet) windows.

The same :class:`FrameStream` serves live audio, WAV replay, collection and the benchmark, so the
frames a model was trained on and the frames it listens to can never differ.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from edge.config import FFT_SIZE, NUM_BINS, NUM_FRAMES, SAMPLE_RATE

DEFAULT_HOP = 1024
DEFAULT_DB_FLOOR = -160.0


def periodic_blackman(n: int = FFT_SIZE) -> np.ndarray:
    """WebAudio's Blackman window: ``0.42 − 0.5·cos(2πi/N) + 0.08·cos(4πi/N)``, divisor N."""
    i = np.arange(n, dtype=np.float64)
    return 0.42 - 0.5 * np.cos(2 * np.pi * i / n) + 0.08 * np.cos(4 * np.pi * i / n)


_WINDOW = periodic_blackman()
# NOTE: fold the 1/N magnitude scale into the window, saving one multiply per bin per hop.
_SCALED_WINDOW = (_WINDOW / FFT_SIZE).astype(np.float64)


def frame_db(frame: np.ndarray, db_floor: float = DEFAULT_DB_FLOOR) -> np.ndarray:
    """dB spectrum (bins 0..231, float32) of exactly 2048 samples."""
    return _spectrum_db(np.fft.rfft(frame * _SCALED_WINDOW)[:NUM_BINS], db_floor)


def frames_db(signal: np.ndarray, hop: int = DEFAULT_HOP, db_floor: float = DEFAULT_DB_FLOOR) -> np.ndarray:
    """All complete frames of a whole signal, shape [n, 232] float32 (whole-file computation)."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.shape[0] < FFT_SIZE:
        return np.empty((0, NUM_BINS), dtype=np.float32)
    n = 1 + (signal.shape[0] - FFT_SIZE) // hop
    if n == 1:
        # NOTE: the live case (one frame per hop). sliding_window_view and the 2-D path cost
        # ~25 µs of Python overhead per call, half the front end's budget; the result is bit-identical.
        return frame_db(signal[:FFT_SIZE], db_floor)[np.newaxis]
    # NOTE: a view of exactly the n frames used. sliding_window_view(signal, FFT_SIZE)[::hop] first
    # builds a view of every sample offset (len × 2048 elements): numpy's 32-bit index type on armv7l
    # refuses that ("array is too big") for any signal over ~3 s.
    step = signal.strides[0]
    strided = np.lib.stride_tricks.as_strided(signal, shape=(n, FFT_SIZE), strides=(hop * step, step),
                                              writeable=False)
    return _spectrum_db(np.fft.rfft(strided * _SCALED_WINDOW, axis=1)[:, :NUM_BINS], db_floor)


def _spectrum_db(spec: np.ndarray, db_floor: float) -> np.ndarray:
    power = spec.real * spec.real + spec.imag * spec.imag
    # NOTE: 10·log10(|X|²) == 20·log10(|X|) without the sqrt; the floor avoids log10(0) warnings.
    np.maximum(power, 10.0 ** (db_floor / 10.0), out=power)
    return (10.0 * np.log10(power)).astype(np.float32)


def windows_from_frames(frames: np.ndarray) -> np.ndarray:
    """Every 3-frame window of a frame sequence, shape [n-2, 3, 232] (window i ends at frame i+2)."""
    if frames.shape[0] < NUM_FRAMES:
        return np.empty((0, NUM_FRAMES, NUM_BINS), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(frames, NUM_FRAMES, axis=0).transpose(0, 2, 1).copy()


def window_level_db(window: np.ndarray) -> float:
    """Loudness of a window: its mean *power* over bins and frames, in dB (0–5 kHz band energy).

    NOTE: not the mean of the dB values — that is dominated by the many quiet bins, so a loud
    whistle (a few bins) would hardly move it.
    """
    return float(10.0 * np.log10(np.mean(np.power(10.0, window * 0.1, dtype=np.float64))))


def window_levels_db(windows: np.ndarray) -> np.ndarray:
    """:func:`window_level_db` of each window of a [n, 3, 232] stack."""
    flat = windows.reshape(windows.shape[0], -1).astype(np.float64)
    return 10.0 * np.log10(np.mean(np.power(10.0, flat * 0.1), axis=1))


class FrameStream:
    """Streaming front end: push any number of samples, get every frame that completed.

    Frame k ends at stream sample ``k·hop + 2048``; :attr:`frames_emitted` counts frames since the
    start. :class:`WindowStream` turns the frames into the classifier's 3-frame windows.
    """

    def __init__(self, hop: int = DEFAULT_HOP, db_floor: float = DEFAULT_DB_FLOOR):
        if hop not in (512, 1024):
            raise ValueError("hop must be 1024 (browser) or 512")
        self.hop = hop
        self.db_floor = db_floor
        self._pending = np.zeros(0, dtype=np.float64)
        self.frames_emitted = 0

    def frame_end_sample(self, k: int | None = None) -> int:
        """Stream sample index just after frame ``k`` (default: the newest frame)."""
        k = self.frames_emitted - 1 if k is None else k
        return k * self.hop + FFT_SIZE

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed samples; returns the frames completed by them, shape [m, 232]."""
        buf = np.concatenate((self._pending, np.asarray(samples, dtype=np.float64)))
        if buf.shape[0] < FFT_SIZE:
            self._pending = buf
            return np.empty((0, NUM_BINS), dtype=np.float32)
        frames = frames_db(buf, self.hop, self.db_floor)
        m = frames.shape[0]
        self._pending = buf[m * self.hop:]
        self.frames_emitted += m
        return frames


class WindowStream:
    """The one window assembler: every 3-frame window the new samples complete, across block
    boundaries (the two frames before a block are kept), as ``windows_from_frames`` of the whole
    signal would give them. The engine's hop path and :func:`stream_windows` both use it."""

    def __init__(self, frames: FrameStream):
        self.frames = frames
        self._tail = np.empty((0, NUM_BINS), dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """Feed samples: ``(windows [n, 3, 232], k)`` where window i's newest frame is frame ``k + i``."""
        new = self.frames.push(samples)
        if new.shape[0] == 0:
            return np.empty((0, NUM_FRAMES, NUM_BINS), dtype=np.float32), self.frames.frames_emitted
        frames = np.concatenate((self._tail, new)) if self._tail.shape[0] else new
        self._tail = frames[-(NUM_FRAMES - 1):]
        windows = windows_from_frames(frames)
        return windows, self.frames.frames_emitted - windows.shape[0]


def stream_windows(blocks: Iterable[np.ndarray], hop: int = DEFAULT_HOP,
                   db_floor: float = DEFAULT_DB_FLOOR) -> Iterator[np.ndarray]:
    """Every 3-frame window of a stream of sample blocks, a [n, 3, 232] stack per block — the
    windows ``windows_from_frames(frames_db(whole signal))`` gives, without the whole signal."""
    stream = WindowStream(FrameStream(hop, db_floor))
    for block in blocks:
        windows, _ = stream.push(block)
        if windows.shape[0]:
            yield windows


def seconds(samples: int) -> float:
    return samples / SAMPLE_RATE
