"""``devices``, ``record`` and ``spectrogram``: see the microphones, check a capture, see a sound."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from edge.audio.spectrogram import FrameStream
from edge.config import NUM_BINS, SAMPLE_RATE, Config
from edge.errors import UsageError

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("devices", help="list audio input devices (marks the configured one)")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("record", help="record from the microphone to a WAV (a capture check)")
    p.add_argument("--seconds", type=float, required=True, help="how long, seconds (up to 600)")
    p.add_argument("--out", required=True, metavar="F.wav", help="output WAV (16-bit mono 44.1 kHz)")
    p.add_argument("--device", help="input device index or name substring (default: audio.device)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("spectrogram", help="BROWSER_FFT frames of a WAV: frame count, level stats, optional PNG")
    p.add_argument("--from-wav", required=True, metavar="F", help="WAV file (any rate, channels, 8–32 bit)")
    p.add_argument("--png", metavar="OUT.png", help="draw the spectrogram (needs Pillow: the 'plot' extra)")
    p.set_defaults(func=cmd_spectrogram)


def cmd_devices(args, config: Config) -> int:
    from edge.audio.mic import find_device, list_devices
    devices = list_devices()
    if not devices:
        print("no audio input devices found (is the USB microphone plugged in? `arecord -l` lists ALSA cards)")
        return 1
    chosen = find_device(devices, config.audio.device)
    print(f"{'':2}{'index':>5}  {'channels':>8}  {'rate':>6}  name")
    for d in devices:
        mark = "*" if chosen is d else " "
        print(f"{mark:2}{d['index']:>5}  {d['channels']:>8}  {d['default_rate']:>6}  {d['name']}"
              + ("  (system default)" if d["default"] else ""))
    if chosen is None:
        print(f"audio.device = {config.audio.device!r} matches none of these")
        return 1
    print(f"* = configured input (audio.device = {config.audio.device!r})")
    return 0


def record_seconds(config: Config, seconds: float, device: str | None = None) -> np.ndarray:
    """Capture ``seconds`` of 44.1 kHz mono from the configured source (the microphone by default)."""
    from edge.audio.ring import Ring
    from edge.audio.choose import make_source
    if not 0 < seconds <= 600:
        raise UsageError(f"--seconds {seconds}: must be in (0, 600]")
    audio = config.audio if device is None else dataclasses.replace(config.audio, device=device, source="pyaudio")
    ring = Ring(int((seconds + 2) * SAMPLE_RATE), max_write=8192)
    with make_source(audio, ring) as source:
        wait = getattr(source, "wait_started", None)
        if wait is not None and not wait(5.0):
            raise UsageError(f"{source.describe()}: no audio arrived within 5 s")
        mark = ring.end
        while ring.end - mark < seconds * SAMPLE_RATE:
            time.sleep(0.05)
    samples = ring.last(ring.end - mark)
    return samples[:int(seconds * SAMPLE_RATE)]


def cmd_record(args, config: Config) -> int:
    from edge.audio.wavfile import write_wav
    samples = record_seconds(config, args.seconds, args.device)
    write_wav(args.out, samples)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    rms = float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0
    print(f"{args.out}: {samples.shape[0] / SAMPLE_RATE:.2f} s, peak {20 * np.log10(max(peak, 1e-10)):.1f} dBFS, "
          f"rms {20 * np.log10(max(rms, 1e-10)):.1f} dBFS")
    if peak < 1e-4:
        print("warning: the recording is (almost) silent — wrong device, or the mic is muted (alsamixer)")
    return 0


PNG_MAX_FRAMES = 4000
"""A PNG of more frames (~93 s at hop 1024) is too wide to look at and to draw in bounded memory."""
_HIST_STEP_DB = 0.001
"""Resolution of the streamed median of frame dB values (220,000 bins at the default floor: 1.8 MB)."""


def cmd_spectrogram(args, config: Config) -> int:
    from edge.audio.wavfile import open_wav
    wav = open_wav(args.from_wav)
    info, hop = wav.info, config.frontend.hop
    if args.png and _expected_frames(wav.seconds, hop) > PNG_MAX_FRAMES:
        limit_s = (PNG_MAX_FRAMES * hop) / SAMPLE_RATE
        raise UsageError(f"--png: {args.from_wav} is {wav.seconds:.0f} s; a PNG shows at most {limit_s:.0f} s "
                         f"({PNG_MAX_FRAMES} frames): cut a part with `sox {args.from_wav} part.wav trim 0 "
                         f"{limit_s:.0f}`")
    stats = _SpectrumStats(config.frontend.db_floor, keep_frames=bool(args.png))
    # NOTE: streamed block by block: a 1-hour WAV read whole peaked at 6.7 GB RSS.
    stream = FrameStream(hop, config.frontend.db_floor)
    for block in wav.blocks():
        stats.add(block.shape[0], stream.push(block))
    print(f"{args.from_wav}: {info.rate} Hz, {info.channels} ch, {info.bits}-bit → {stats.samples} samples at "
          f"44.1 kHz ({stats.samples / SAMPLE_RATE:.2f} s)")
    print(f"frames: {stats.frames} × {NUM_BINS} bins (hop {hop})")
    if stats.frames:
        loudest = int(stats.bin_max.argmax())
        print(f"dB: min {stats.lo:.1f}, median {stats.median():.1f}, max {stats.hi:.1f}; "
              f"loudest bin {loudest} ({loudest * SAMPLE_RATE / 2048:.0f} Hz)")
        levels = stats.levels()
        if levels.size:
            print(f"window level dB: p10 {np.percentile(levels, 10):.1f}, p50 {np.median(levels):.1f}, "
                  f"p90 {np.percentile(levels, 90):.1f}")
    if args.png:
        draw_png(stats.all_frames(), Path(args.png), hop)
        print(f"wrote {args.png}")
    return 0


def _expected_frames(seconds: float, hop: int) -> int:
    return max(0, 1 + (int(seconds * SAMPLE_RATE) - 2048) // hop)


class _SpectrumStats:
    """Min, max, median and per-bin maxima of a stream of frames, plus every window's level, without
    keeping the frames (the median from a 0.001 dB histogram)."""

    def __init__(self, db_floor: float, keep_frames: bool):
        self.samples = self.frames = 0
        self.lo, self.hi = np.inf, -np.inf
        self.bin_max = np.full(NUM_BINS, -np.inf, dtype=np.float32)
        self._edges_lo = db_floor   # NOTE: the front end clamps every value to at least db_floor
        self._hist = np.zeros(int((60.0 - self._edges_lo) / _HIST_STEP_DB) + 1, dtype=np.int64)
        self._tail = np.empty((0, NUM_BINS), dtype=np.float32)
        self._levels: list[np.ndarray] = []
        self._kept: list[np.ndarray] | None = [] if keep_frames else None

    def add(self, samples: int, frames: np.ndarray) -> None:
        from edge.audio.spectrogram import window_levels_db, windows_from_frames
        self.samples += samples
        if frames.shape[0] == 0:
            return
        self.frames += frames.shape[0]
        self.lo, self.hi = min(self.lo, float(frames.min())), max(self.hi, float(frames.max()))
        np.maximum(self.bin_max, frames.max(axis=0), out=self.bin_max)
        # NOTE: intp, not int64: np.bincount refuses int64 on 32-bit numpy (armv7l Pi OS)
        idx = np.clip(((frames - self._edges_lo) / _HIST_STEP_DB).astype(np.intp), 0, self._hist.size - 1)
        self._hist += np.bincount(idx.ravel(), minlength=self._hist.size)
        both = np.concatenate((self._tail, frames))
        self._tail = both[-2:]
        windows = windows_from_frames(both)
        if windows.shape[0]:
            self._levels.append(window_levels_db(windows))
        if self._kept is not None:
            self._kept.append(frames)

    def median(self) -> float:
        cum = np.cumsum(self._hist)
        n = int(cum[-1])
        # As np.median: the mean of the two middle values when the count is even.
        k = np.searchsorted(cum, [(n - 1) // 2, n // 2], side="right")
        return float(self._edges_lo + (k.mean() + 0.5) * _HIST_STEP_DB)

    def levels(self) -> np.ndarray:
        return np.concatenate(self._levels) if self._levels else np.empty(0)

    def all_frames(self) -> np.ndarray:
        return np.concatenate(self._kept) if self._kept else np.empty((0, NUM_BINS), dtype=np.float32)


def draw_png(frames: np.ndarray, path: Path, hop: int, lo: float = -120.0, hi: float = -20.0) -> None:
    """Time left→right, frequency bottom→top, 2 px per bin; dB mapped lo..hi onto a dark→bright ramp."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("--png needs Pillow: pip install 'edge-slider[plot]'") from None
    from edge.fileio import atomic_write_bytes
    import io
    v = np.clip((frames.T[::-1] - lo) / (hi - lo), 0, 1) if frames.size else np.zeros((NUM_BINS, 1))
    # A small perceptual-ish ramp: black → blue → orange → white.
    stops = np.array([[0, 0, 0], [30, 40, 140], [230, 120, 30], [255, 255, 230]], dtype=float)
    pos = v * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[..., None]
    rgb = (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB").resize((max(1, rgb.shape[1]) * 4, NUM_BINS * 2), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise UsageError(f"--png {path}: cannot write ({exc.strerror})") from None
