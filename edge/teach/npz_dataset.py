"""The seed dataset format (``.npz``: ``x`` [N,3,232] float32 dB, ``y`` [N] int, ``labels`` [K] str),
read with one-line errors naming the key that is wrong."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edge.config import NUM_BINS, NUM_FRAMES
from edge.errors import StoreError

WINDOW_SHAPE = (NUM_FRAMES, NUM_BINS)

_ZIP_MAGIC = b"PK\x03\x04"
NPZ_FORMAT = "x [N,3,232] float32 dB, y [N] int, labels [K] str"


def read_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """A seed-format dataset, checked: one-line errors naming the key that is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic != _ZIP_MAGIC:
        # NOTE: np.load would answer a text file with its message about pickled data.
        raise StoreError(f"{path}: not a dataset file; accepted: a .npz ({NPZ_FORMAT}) or a TF.js "
                         "speech-commands dataset (TFJSSCDS .bin, as the browser codelab saves)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "y", "labels") if k not in data.files]
            if missing:
                raise StoreError(f"{path}: missing key(s) {', '.join(missing)}; expected {NPZ_FORMAT}")
            x, y, labels = data["x"], data["y"], tuple(str(s) for s in data["labels"])
    except StoreError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise StoreError(f"{path}: not a readable .npz ({exc}); expected {NPZ_FORMAT}") from None
    if x.ndim != 3 or x.shape[1:] != WINDOW_SHAPE:
        raise StoreError(f"{path}: x has shape {list(x.shape)}, expected [N, {NUM_FRAMES}, {NUM_BINS}]")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise StoreError(f"{path}: y must be [N={x.shape[0]}] integers, got {y.dtype} {list(y.shape)}")
    if len(y) and (y.min() < 0 or y.max() >= len(labels)):
        raise StoreError(f"{path}: y holds class {int(y.max())} but labels has only {len(labels)} entries")
    if not np.all(np.isfinite(x)):
        raise StoreError(f"{path}: x holds NaN or infinite values")
    return x.astype(np.float32, copy=False), y.astype(np.int64), labels
