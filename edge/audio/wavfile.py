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
from typing import BinaryIO, Iterator

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


BLOCK_FRAMES = 1 << 16
"""Samples per channel read at a time when streaming (~1.5 s at 44.1 kHz): memory stays a few MB
for any length of file."""
_STREAMED = 0xFFFFFFFF
"""A data size some recorders write when they stream to a pipe: 'until the end of the file'."""
_MAX_FMT = 1 << 16


@dataclass(frozen=True)
class WavFile:
    """An opened (header-checked) WAV whose samples are read block by block, never all at once."""

    path: Path
    info: WavInfo
    data_offset: int
    """Byte offset of the first sample in the file."""

    @property
    def seconds(self) -> float:
        return self.info.frames / self.info.rate

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """44.1 kHz mono float32 blocks (channels averaged), in order; each call reads the file anew."""
        info, name = self.info, str(self.path)
        block = info.channels * info.bits // 8
        resampler = _Resampler(info.rate)
        left = info.frames
        try:
            with open(self.path, "rb") as f:
                f.seek(self.data_offset)
                while left > 0:
                    n = min(frames, left)
                    payload = f.read(n * block)
                    n = len(payload) // block
                    if n == 0:
                        raise WavError(f"{name}: the file shrank while it was being read")
                    left -= n
                    mono = _decode(info, payload[:n * block]).mean(axis=1, dtype=np.float32)
                    out = resampler.push(mono, last=left == 0)
                    if out.shape[0]:
                        yield out
        except OSError as exc:
            raise WavError(f"{name}: cannot read ({exc.strerror or exc})") from None


class _Resampler:
    """Streaming resampling to 44.1 kHz: soxr's stream gives exactly what a one-shot resample would."""

    def __init__(self, rate: int):
        self._stream = None
        self._linear_from: int | None = None
        if rate == SAMPLE_RATE:
            return
        try:
            import soxr
        except ImportError:  # pragma: no cover - soxr is a core dependency; this is the emergency path
            log.warning("soxr is not installed: resampling %d Hz → %d Hz with linear interpolation", rate,
                        SAMPLE_RATE)
            self._linear_from = rate
            return
        self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    def push(self, x: np.ndarray, last: bool) -> np.ndarray:
        if self._stream is not None:
            return self._stream.resample_chunk(x, last=last).astype(np.float32, copy=False)
        if self._linear_from is not None:  # pragma: no cover - block edges are not continuous here
            return resample(x, self._linear_from)
        return x


def open_wav(path: str | Path) -> WavFile:
    """Check the header of a WAV (one-line :class:`WavError` naming the file) without reading its audio."""
    p, name = Path(path), str(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            info, offset = _parse_header(f, size, name)
    except FileNotFoundError:
        raise WavError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise WavError(f"{name}: is a directory, not a WAV file") from None
    except OSError as exc:
        raise WavError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if info.frames == 0:
        raise WavError(f"{name}: the WAV holds no audio (0 samples)")
    return WavFile(p, info, offset)


def _parse_header(f: BinaryIO, size: int, name: str) -> tuple[WavInfo, int]:
    head = f.read(12)
    if not head:
        raise WavError(f"{name}: the file is empty (0 bytes)")
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header); convert it with "
                       f"`sox {name} -r 44100 -c 1 -b 16 out.wav`")
    if head[:4] == b"RIFX":
        raise WavError(f"{name}: big-endian RIFX WAV is not supported; convert it with sox")
    fmt, data_at, declared = None, None, 0
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        cid, csize = chunk[:4], struct.unpack_from("<I", chunk, 4)[0]
        if cid == b"data":
            data_at, declared = f.tell(), csize
            break
        if cid == b"fmt " and csize <= _MAX_FMT:
            fmt = f.read(csize)
            f.seek(csize & 1, 1)
        else:
            f.seek(csize + (csize & 1), 1)
    if fmt is None or len(fmt) < 16:
        raise WavError(f"{name}: WAV has no valid 'fmt ' chunk (truncated or damaged file)")
    if data_at is None:
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
    block = bits // 8 * channels  # NOTE: some writers get the header's block align wrong; derive it.
    present = max(0, size - data_at)
    if declared > present and declared != _STREAMED:
        # A copy cut short (a full disk, an interrupted download): use the audio there is, but say so.
        log.warning("%s: truncated WAV: the header says %.2f s of audio, the file holds %.2f s; using the %.2f s",
                    name, declared // block / rate, present // block / rate, present // block / rate)
    frames = min(declared, present) // block if declared != _STREAMED else present // block
    return WavInfo(rate, channels, bits, tag == _FLOAT, frames), data_at


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
    """The whole file as 44.1 kHz mono float32 (channels averaged). For long files use
    :func:`open_wav` and its :meth:`WavFile.blocks`: this holds all of it in memory."""
    wav = open_wav(path)
    size = wav.info.frames * wav.info.channels * wav.info.bits // 8
    if size > MAX_WAV_BYTES:
        raise WavError(f"{path}: {size} bytes of audio is too large to read at once (limit {MAX_WAV_BYTES}); "
                       "split it with sox")
    if wav.info.rate != SAMPLE_RATE:
        log.info("%s: resampling %d Hz → %d Hz", path, wav.info.rate, SAMPLE_RATE)
    blocks = list(wav.blocks())
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def wav_info(path: str | Path) -> WavInfo:
    return open_wav(path).info


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
