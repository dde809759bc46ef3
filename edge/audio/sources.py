"""Audio sources: everything that delivers 44.1 kHz mono float32 samples into a :class:`Ring`.

``AudioSource`` is the interface. Subclasses **must** implement :meth:`AudioSource._open` and
:meth:`AudioSource._close`; they **may** override :meth:`AudioSource.describe`.

* ``PyAudioSource`` (``edge.audio.mic``): a PortAudio callback stream — the real microphone.
  ``edge.audio.choose.make_source`` picks one of them from the config.
* ``WavSource``: replays a WAV file (any rate, channels, 8/16/24/32-bit) in real time or as fast as
  the consumer reads.
* ``SyntheticSource``: scripted snaps / whistles / babble / noise for demos and tests.

The two file-backed sources share :class:`ArraySource`, whose feeder thread writes one hop-sized
block at a time. In real-time mode it keeps wall-clock pace (like a mic); otherwise it waits for
the consumer so nothing is ever overwritten (replay as fast as possible with 0 overruns).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

import numpy as np

from edge.audio import synth
from edge.audio.ring import Ring
from edge.audio.wavfile import open_wav
from edge.config import SAMPLE_RATE
from edge.errors import AudioError, UsageError

log = logging.getLogger(__name__)


class AudioSource(ABC):
    """Produces samples into ``ring``. ``start`` returns once the stream runs; ``stop`` is idempotent."""

    sample_rate = SAMPLE_RATE

    def __init__(self, ring: Ring):
        self.ring = ring
        self.running = False
        self.error: str | None = None
        """The last stream error, for the state report ('' once recovered)."""

    def start(self) -> None:
        if self.running:
            return
        self._open()
        self.running = True

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._close()

    @property
    def finished(self) -> bool:
        """A finite source delivered everything (the ring is closed)."""
        return self.ring.closed

    def describe(self) -> str:
        return type(self).__name__

    @abstractmethod
    def _open(self) -> None:
        """Start producing into ``self.ring`` (raise AudioError on failure)."""

    @abstractmethod
    def _close(self) -> None:
        """Stop producing and release the device."""

    def __enter__(self) -> "AudioSource":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ArraySource(AudioSource):
    """Feeds a prepared float32 array into the ring from a thread, block by block."""

    def __init__(self, ring: Ring, samples: np.ndarray, realtime: bool = True, loop: bool = False,
                 block: int = 1024, gain_db: float = 0.0):
        super().__init__(ring)
        if samples.ndim != 1 or samples.shape[0] == 0:
            raise AudioError("audio source has no samples")
        gain = 10.0 ** (gain_db / 20.0)
        self.samples = (samples * gain).astype(np.float32) if gain_db else samples.astype(np.float32, copy=False)
        self.realtime = realtime
        self.loop = loop
        self.block = block
        self.position = 0
        """Samples delivered so far (all loops)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._feed, name=f"{type(self).__name__}-feed", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._thread = None

    def _chunks(self) -> Iterator[np.ndarray]:
        """Blocks of at most ``block`` samples, in order; forever when looping."""
        n = self.samples.shape[0]
        while True:
            for i in range(0, n, self.block):
                yield self.samples[i:i + self.block]
            if not self.loop:
                return

    def _feed(self) -> None:
        t0 = time.monotonic()
        # NOTE: leave room for one write in flight, so lockstep replay can never lap the reader.
        room = self.ring.capacity - self.ring.max_write - self.block
        try:
            for chunk in self._chunks():
                if self._stop.is_set():
                    return
                if self.realtime:
                    due = t0 + (self.position + chunk.shape[0]) / SAMPLE_RATE
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                else:
                    while self.ring.end - self.ring.read_position > room:
                        if self._stop.wait(0.001):
                            return
                self.ring.write(chunk)
                self.position += chunk.shape[0]
        except AudioError as exc:   # a file that went bad while playing: the stream ends, and says why
            self.error = str(exc)
            log.error("%s", exc)
        self.ring.close()


class WavSource(ArraySource):
    """Replays a WAV file as if it were a microphone, reading it block by block (any length)."""

    def __init__(self, ring: Ring, path: str | Path, realtime: bool = True, loop: bool = False,
                 block: int = 1024, gain_db: float = 0.0):
        self.path = Path(path)
        self.wav = open_wav(self.path)
        self._gain = 10.0 ** (gain_db / 20.0) if gain_db else None
        # NOTE: the base class's array is a placeholder; the audio comes from _chunks, read as it plays.
        super().__init__(ring, np.zeros(1, np.float32), realtime, loop, block)

    def _chunks(self) -> Iterator[np.ndarray]:
        while True:
            pending = np.zeros(0, np.float32)
            for data in self.wav.blocks():
                data = np.concatenate((pending, data)) if pending.size else data
                full = data.shape[0] - data.shape[0] % self.block
                for i in range(0, full, self.block):
                    yield self._gained(data[i:i + self.block])
                pending = data[full:]
            if pending.size:
                yield self._gained(pending)
            if not self.loop:
                return

    def _gained(self, x: np.ndarray) -> np.ndarray:
        return (x * self._gain).astype(np.float32) if self._gain is not None else x

    def describe(self) -> str:
        return f"wav:{self.path.name}"


class SyntheticSource(ArraySource):
    """Plays a scripted scene of synthetic sounds (see :mod:`edge.audio.synth`)."""

    DEFAULT_SCRIPT = "gap:1, snap, gap:0.6, snap, gap:0.8, whistle, gap:0.8, babble:1.5, gap:0.6, whistle, gap:1"

    def __init__(self, ring: Ring, script: str = DEFAULT_SCRIPT, seed: int = 0, realtime: bool = True,
                 loop: bool = True, block: int = 1024, gain_db: float = 0.0):
        try:
            samples, self.onsets = synth.render(script, seed=seed)
        except ValueError as exc:
            raise UsageError(f"synthetic script: {exc}") from None
        self.script = script
        super().__init__(ring, samples, realtime, loop, block, gain_db)

    def describe(self) -> str:
        return "synthetic"

