"""``PyAudioSource``: a PortAudio callback stream from a microphone into the ring.

The callback runs on PortAudio's real-time thread and does O(1) work: view the buffer as float32,
one copy into the ring, update two integers. No logging, no locks, no numpy allocation beyond the
view (PortAudio hands us float32 mono directly).

If the device refuses 44,100 Hz it is opened at its own default rate and a streaming ``soxr``
resampler converts in the callback (with a warning: it costs CPU and a few ms of latency).
Gotcha (measured): PortAudio's first buffer arrives 0.25–2 s after ``start_stream()``; audio before
that is lost — :meth:`PyAudioSource.wait_started` waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from typing import Any

import numpy as np

from edge.audio.ring import Ring
from edge.audio.sources import AudioSource
from edge.config import SAMPLE_RATE, AudioSettings
from edge.errors import AudioError, ResampleWarning

log = logging.getLogger(__name__)

STALL_S = 2.0
"""No callback for this long (after the first) means the stream died (USB unplugged)."""


@contextlib.contextmanager
def _quiet_stderr():
    """PortAudio/ALSA print pages of probing noise on stderr at init; keep it out of the journal."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def _pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise AudioError("PyAudio is not installed: pip install 'edge-slider[audio]' "
                         "(needs apt install portaudio19-dev)") from None
    with _quiet_stderr():
        return pyaudio, pyaudio.PyAudio()


def list_devices() -> list[dict]:
    """Input devices: index, name, channels, default rate."""
    _, pa = _pyaudio()
    try:
        out = []
        try:
            default = pa.get_default_input_device_info()["index"]
        except (IOError, OSError):
            default = None
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            if info.get("maxInputChannels", 0) > 0:
                out.append({"index": i, "name": info["name"], "channels": int(info["maxInputChannels"]),
                            "default_rate": int(info["defaultSampleRate"]), "default": i == default})
        return out
    finally:
        pa.terminate()


def find_device(devices: list[dict], wanted: str) -> dict | None:
    """By index (digits) or case-insensitive name substring; '' = the default input."""
    if not devices:
        return None
    if wanted == "":
        return next((d for d in devices if d["default"]), devices[0])
    if wanted.isdigit():
        return next((d for d in devices if d["index"] == int(wanted)), None)
    return next((d for d in devices if wanted.lower() in d["name"].lower()), None)


class PyAudioSource(AudioSource):
    def __init__(self, ring: Ring, settings: AudioSettings):
        super().__init__(ring)
        self.settings = settings
        self._pa = None
        self._stream: Any = None  # a pyaudio.Stream once open
        self._resampler = None
        self.device_name = "?"
        self.device_rate = SAMPLE_RATE
        self.callbacks = 0
        self.input_overflows = 0
        self._last_callback = 0.0
        self._started = threading.Event()
        self._gain = np.float32(10.0 ** (settings.gain_db / 20.0))

    # NOTE: runs on PortAudio's thread: keep it O(1), no logging, no locks.
    def _callback(self, in_data, frame_count, time_info, status):
        x = np.frombuffer(in_data, dtype=np.float32)
        if self._gain != 1.0:
            x = x * self._gain
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self.ring.write(x)
        if status:
            self.input_overflows += 1
        self.callbacks += 1
        self._last_callback = time.monotonic()
        if self.callbacks == 1:
            self._started.set()
        return None, self._continue

    def _open(self) -> None:
        pyaudio, pa = _pyaudio()
        self._pa = pa
        self._continue = pyaudio.paContinue
        try:
            devices = list_devices()
            dev = find_device(devices, self.settings.device)
            if dev is None:
                names = "; ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"
                raise AudioError(f"audio.device = {self.settings.device!r}: no such input device "
                                 f"(inputs: {names}); see `edge-slider devices`")
            self.device_name = dev["name"]
            rate = SAMPLE_RATE
            try:
                ok = pa.is_format_supported(SAMPLE_RATE, input_device=dev["index"], input_channels=1,
                                            input_format=pyaudio.paFloat32)
            except ValueError:
                ok = False
            if not ok:
                rate = dev["default_rate"]
                import soxr
                self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
                warnings.warn(f"{dev['name']} does not capture at {SAMPLE_RATE} Hz: opened at {rate} Hz and "
                              "resampling (costs CPU and a few ms)", ResampleWarning, stacklevel=2)
            self.device_rate = rate
            frames = max(64, int(round(self.settings.buffer_frames * rate / SAMPLE_RATE)))
            with _quiet_stderr():
                self._stream = pa.open(format=pyaudio.paFloat32, channels=1, rate=int(rate), input=True,
                                       input_device_index=dev["index"], frames_per_buffer=frames,
                                       stream_callback=self._callback, start=False)
                self._stream.start_stream()
        except AudioError:
            self._close()
            raise
        except (OSError, IOError, ValueError) as exc:
            self._close()
            raise AudioError(f"cannot open input {self.device_name!r}: {exc}; check `edge-slider devices` "
                             "and audio.device") from None
        log.info("microphone %r open at %d Hz%s", self.device_name, rate,
                 " (resampling to 44100)" if self._resampler else "")

    def wait_started(self, timeout: float = 5.0) -> bool:
        """Block until the first buffer arrived (PortAudio takes 0.25–2 s)."""
        return self._started.wait(timeout)

    def healthy(self) -> bool:
        if self._stream is None:
            return False
        if not self._started.is_set():
            return True
        try:
            active = self._stream.is_active()
        except OSError:
            return False
        return active and time.monotonic() - self._last_callback < STALL_S

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, IOError):
                stream.stop_stream()
            with contextlib.suppress(OSError, IOError):
                stream.close()
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()

    def describe(self) -> str:
        return f"mic:{self.device_name}@{self.device_rate}"
