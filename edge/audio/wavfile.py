"""Read any WAV (PCM 8/16/24/32-bit, float 32/64, any rate and channel count) as 44.1 kHz mono float32.

The stdlib ``wave`` module refuses float WAVs and WAVE_FORMAT_EXTENSIBLE, which common tools
(sox, Audacity, arecord) write, so this parses the RIFF chunks itself. Every failure is a
one-line :class:`WavError` naming the file and what is wrong.
"""

from __future__ import annotations

import logging
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import SAMPLE_RATE
from edge.errors import WavError

log = logging.getLogger(__name__)

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
MAX_WAV_BYTES = 2 * 1024 ** 3


@dataclass(frozen=True)
class WavInfo:
    rate: int
    """Hertz, as stored in the file."""
    channels: int
    bits: int
    is_float: bool
    frames: int
    """Samples per channel."""


def _parse(data: bytes, name: str) -> tuple[WavInfo, bytes]:
    if not data:
        raise WavError(f"{name}: the file is empty (0 bytes)")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header); convert it with "
                       f"`sox {name} -r 44100 -c 1 -b 16 out.wav`")
    if data[:4] == b"RIFX":
        raise WavError(f"{name}: big-endian RIFX WAV is not supported; convert it with sox")
    pos, fmt, payload = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            payload = body  # NOTE: a truncated file gives a short data chunk; we use what is there.
            break
        pos += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise WavError(f"{name}: WAV has no valid 'fmt ' chunk (truncated or damaged file)")
    if payload is None:
        raise WavError(f"{name}: WAV has no 'data' chunk")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag not in (_PCM, _FLOAT):
        raise WavError(f"{name}: WAV encoding 0x{tag:04x} is not PCM or float; convert it with "
                       f"`sox {name} -b 16 out.wav`")
    if channels < 1 or rate < 1000 or rate > 768_000:
        raise WavError(f"{name}: implausible WAV header ({channels} channels, {rate} Hz)")
    if tag == _PCM and bits not in (8, 16, 24, 32) or tag == _FLOAT and bits not in (32, 64):
        raise WavError(f"{name}: {bits}-bit {'float' if tag == _FLOAT else 'PCM'} WAV is not supported")
    width = bits // 8
    if block != width * channels:
        block = width * channels
    frames = len(payload) // block
    return WavInfo(rate, channels, bits, tag == _FLOAT, frames), payload[:frames * block]


def _decode(info: WavInfo, payload: bytes) -> np.ndarray:
    """Interleaved bytes → float32 [frames, channels] in -1..1."""
    if info.is_float:
        x = np.frombuffer(payload, dtype="<f4" if info.bits == 32 else "<f8").astype(np.float32)
    elif info.bits == 8:
        x = (np.frombuffer(payload, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif info.bits == 16:
        x = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    elif info.bits == 24:
        b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    else:
        x = np.frombuffer(payload, dtype="<i4").astype(np.float32) / float(1 << 31)
    return x.reshape(-1, info.channels)


def resample(x: np.ndarray, rate: int, to: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio; soxr (high quality) when installed, else linear interpolation."""
    if rate == to or x.shape[0] == 0:
        return x.astype(np.float32, copy=False)
    try:
        import soxr
    except ImportError:  # pragma: no cover - soxr is a core dependency; this is the emergency path
        log.warning("soxr is not installed: resampling %d Hz → %d Hz with linear interpolation", rate, to)
        n = int(round(x.shape[0] * to / rate))
        return np.interp(np.arange(n) * rate / to, np.arange(x.shape[0]), x).astype(np.float32)
    return soxr.resample(x, rate, to).astype(np.float32, copy=False)


def read_wav(path: str | Path) -> np.ndarray:
    """The whole file as 44.1 kHz mono float32 (channels averaged)."""
    p = Path(path)
    name = str(path)
    try:
        size = p.stat().st_size
        if size > MAX_WAV_BYTES:
            raise WavError(f"{name}: {size} bytes is too large (limit {MAX_WAV_BYTES}); split it with sox")
        data = p.read_bytes()
    except FileNotFoundError:
        raise WavError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise WavError(f"{name}: is a directory, not a WAV file") from None
    except OSError as exc:
        raise WavError(f"{name}: cannot read ({exc.strerror})") from None
    info, payload = _parse(data, name)
    if info.frames == 0:
        raise WavError(f"{name}: the WAV holds no audio (0 samples)")
    x = _decode(info, payload).mean(axis=1).astype(np.float32)
    if info.rate != SAMPLE_RATE:
        log.info("%s: resampling %d Hz → %d Hz", name, info.rate, SAMPLE_RATE)
    return resample(x, info.rate)


def wav_info(path: str | Path) -> WavInfo:
    p = Path(path)
    try:
        return _parse(p.read_bytes(), str(path))[0]
    except OSError as exc:
        raise WavError(f"{path}: cannot read ({exc.strerror})") from None


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit mono PCM, written to a temp file then renamed (a crash never leaves half a WAV)."""
    import io
    from edge.fileio import atomic_write_bytes
    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0 - 1 / 32768) * 32768).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    try:
        atomic_write_bytes(Path(path), buf.getvalue())
    except OSError as exc:
        raise WavError(f"{path}: cannot write ({exc.strerror})") from None
