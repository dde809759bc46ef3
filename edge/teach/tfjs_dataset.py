"""The TF.js speech-commands serialized dataset (``TFJSSCDS``): what the browser codelab saves.

Layout (speech-commands ``dataset.ts``, little-endian)::

    b"TFJSSCDS" | uint32 version (1) | uint32 manifest byte length | manifest JSON | float32 data

The manifest lists one ``{label, spectrogramNumFrames, spectrogramFrameSize,
[spectrogramKeyFrameIndex], [rawAudioNumSamples, rawAudioSampleRateHz]}`` per example; its data
is the spectrogram (numFrames × frameSize dB, as the AnalyserNode gave it, not normalized)
followed by the raw audio if any. An example longer than 3 frames is cut into every 3-frame
window, exactly as a button hold would be; ``_background_noise_`` maps to our background class.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from edge.audio.spectrogram import windows_from_frames
from edge.config import NUM_BINS, NUM_FRAMES
from edge.errors import StoreError

MAGIC = b"TFJSSCDS"
VERSION = 1
BACKGROUND_TAG = "_background_noise_"


def is_tfjs_dataset(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == MAGIC
    except OSError:
        return False


def read_tfjs_dataset(path: str | Path, background: str | None, db_floor: float = -160.0):
    """→ (x [N,3,232] float32 dB, y [N] int, labels tuple), like ``npz_dataset.read_npz``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror})") from None
    if data[:8] != MAGIC or len(data) < 16:
        raise StoreError(f"{path}: not a TF.js speech-commands dataset (no TFJSSCDS header)")
    _, mlen = struct.unpack_from("<II", data, 8)
    try:
        manifest = json.loads(data[16:16 + mlen].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: damaged manifest ({exc})") from None
    body = memoryview(data)[16 + mlen:]
    offset, labels, xs, ys = 0, [], [], []
    for i, spec in enumerate(manifest):
        try:
            frames, size = int(spec["spectrogramNumFrames"]), int(spec["spectrogramFrameSize"])
            raw = int(spec.get("rawAudioNumSamples") or 0)
            label = str(spec["label"])
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"{path}: manifest entry {i} lacks label / spectrogramNumFrames / "
                             "spectrogramFrameSize") from None
        if size != NUM_BINS:
            raise StoreError(f"{path}: example {i} has frameSize {size}; only BROWSER_FFT's {NUM_BINS} bins fit")
        end = offset + 4 * (frames * size + raw)
        if end > len(body):
            raise StoreError(f"{path}: truncated (example {i} runs past the end of the file)")
        spec_frames = np.frombuffer(body[offset:offset + 4 * frames * size], dtype="<f4").reshape(frames, size)
        offset = end
        if frames < NUM_FRAMES:
            continue
        if label == BACKGROUND_TAG and background:
            label = background
        if label not in labels:
            labels.append(label)
        windows = windows_from_frames(np.where(np.isfinite(spec_frames), spec_frames, db_floor).astype(np.float32))
        xs.append(windows)
        ys.extend([labels.index(label)] * len(windows))
    x = np.concatenate(xs) if xs else np.zeros((0, NUM_FRAMES, NUM_BINS), np.float32)
    return x, np.asarray(ys, dtype=np.int64), tuple(labels)


def tfjs_dataset_bytes(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], background: str | None) -> bytes:
    """Serialize windows as 3-frame examples the browser's ``new Dataset(buffer)`` loads."""
    order = sorted(range(len(labels)), key=lambda k: labels[k])   # TF.js sorts by label
    manifest, chunks = [], []
    for k in order:
        name = BACKGROUND_TAG if labels[k] == background else labels[k]
        for w in x[y == k]:
            manifest.append({"label": name, "spectrogramNumFrames": NUM_FRAMES, "spectrogramFrameSize": NUM_BINS})
            chunks.append(np.ascontiguousarray(w, dtype="<f4").tobytes())
    m = json.dumps(manifest, separators=(",", ":")).encode()
    return MAGIC + struct.pack("<II", VERSION, len(m)) + m + b"".join(chunks)
