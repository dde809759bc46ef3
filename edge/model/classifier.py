"""Runs a .tflite classifier on [3, 232] dB windows, after checking it fits our front end.

Two kinds of model are accepted:

* ours (written by ``tflite_writer``): self-describing — labels, sample rate, hop, bins, frames and
  the input kind come from the ``edge_slider`` metadata entry (``input = "dB"``: raw dB in, the
  normalization is inside the graph);
* a foreign classifier with input [1, 3, 232, 1] (float32 or int8) plus a labels file, e.g. one
  exported from the TF.js codelab's model. Its input is assumed to be the codelab's normalized
  ``(dB + 100) / 10``.

Every refusal is a one-line :class:`ModelError` saying what does not fit and what to do.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import numpy as np

from edge.config import FFT_SIZE, NUM_BINS, NUM_FRAMES, SAMPLE_RATE
from edge.errors import ModelError
from edge.model import network as net
from edge.model.fp_mode import preserved_fp_env
from edge.model.runtime import interpreter_class
from edge.model.tflite_meta import METADATA_NAME, read_metadata_entries

log = logging.getLogger(__name__)

FORMAT = "edge-slider-model"
FORMAT_VERSION = 1
INPUT_SHAPE = (1, NUM_FRAMES, NUM_BINS, 1)


def check_bytes(data: bytes, name: str) -> None:
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise ModelError(f"{name}: not a TFLite model (no TFL3 identifier; truncated or another file type)")


def read_metadata(data: bytes, name: str) -> dict | None:
    """Our metadata dict, or None for a foreign model. No schema package: see tflite_meta."""
    try:
        raw = read_metadata_entries(data).get(METADATA_NAME)
        return None if raw is None else json.loads(raw.decode())
    except (ValueError, IndexError, struct.error, UnicodeDecodeError, TypeError) as exc:
        raise ModelError(f"{name}: damaged model file ({type(exc).__name__}: {exc})") from None


def check_metadata(meta: dict, name: str, expect_hop: int | None) -> None:
    if meta.get("format") != FORMAT:
        raise ModelError(f"{name}: metadata format {meta.get('format')!r} is not {FORMAT!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{name}: model format version {meta.get('format_version')} is newer than this "
                         f"edge-slider understands ({FORMAT_VERSION}); upgrade edge-slider")
    want = {"sample_rate": SAMPLE_RATE, "fft_size": FFT_SIZE, "bins": NUM_BINS, "frames": NUM_FRAMES}
    for key, value in want.items():
        if meta.get(key) != value:
            raise ModelError(f"{name}: trained for {key} = {meta.get(key)}, the front end uses {value}; retrain")
    if expect_hop is not None and meta.get("hop") != expect_hop:
        raise ModelError(f"{name}: trained with hop {meta.get('hop')}, front end uses frontend.hop = {expect_hop}; "
                         f"set frontend.hop = {meta.get('hop')} or retrain")


def read_labels(path: str | Path) -> list[str]:
    """A labels file: one label per line, in the model's output order (blank lines ignored)."""
    try:
        return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ModelError(f"{path}: cannot read labels ({exc.strerror})") from None


class Classifier:
    """One loaded model. ``predict(window_db)`` → probabilities [K] float32 (a view; copy to keep)."""

    def __init__(self, data: bytes, name: str = "model", labels: list[str] | None = None,
                 expect_hop: int | None = None, version: int | None = None, num_threads: int = 1):
        check_bytes(data, name)
        meta = read_metadata(data, name)
        if meta is not None:
            check_metadata(meta, name, expect_hop)
            labels = list(meta["labels"])
        elif not labels:
            raise ModelError(f"{name}: a foreign model (no edge-slider metadata) needs a labels file, "
                             "one label per line in output order")
        self.metadata = meta or {"labels": labels, "foreign": True}
        self.labels = tuple(labels)
        self.version = version
        self.name = name
        self.size = len(data)
        Interpreter, self.runtime = interpreter_class()
        try:
            with preserved_fp_env():   # the runtime's libraries may load lazily, here
                self._it = Interpreter(model_content=data, num_threads=num_threads)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{name}: the TFLite runtime refused it ({str(exc).splitlines()[0]})") from None
        ins, outs = self._it.get_input_details(), self._it.get_output_details()
        if len(ins) != 1 or tuple(ins[0]["shape"]) != INPUT_SHAPE:
            raise ModelError(f"{name}: input shape {[list(i['shape']) for i in ins]}, expected "
                             f"{list(INPUT_SHAPE)} (3 frames × 232 bins)")
        if len(outs) != 1 or int(np.prod(outs[0]["shape"])) != len(self.labels):
            raise ModelError(f"{name}: {int(np.prod(outs[0]['shape']))} outputs but {len(self.labels)} labels")
        self._in, self._out = ins[0], outs[0]
        self._in_index, self._out_index = ins[0]["index"], outs[0]["index"]
        self._in_q = ins[0]["quantization"] if ins[0]["dtype"] != np.float32 else None
        self._out_q = outs[0]["quantization"] if outs[0]["dtype"] != np.float32 else None
        self._buf = np.empty(INPUT_SHAPE, dtype=np.float32)
        self._raw_db = self.metadata.get("input") == "dB" and self._in_q is None

    @classmethod
    def from_file(cls, path: str | Path, labels_file: str | Path | None = None, **kw) -> "Classifier":
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
        labels = read_labels(labels_file) if labels_file is not None else None
        return cls(data, name=str(path), labels=labels, **kw)

    def predict(self, window_db: np.ndarray) -> np.ndarray:
        if self._raw_db:
            # NOTE: the fast path (ours): the window goes in as it is, no Python-side arithmetic.
            self._it.set_tensor(self._in_index, np.asarray(window_db, np.float32).reshape(INPUT_SHAPE))
            self._it.invoke()
            return self._it.get_tensor(self._out_index).reshape(-1)
        buf = self._buf.reshape(NUM_FRAMES, NUM_BINS)
        np.subtract(window_db, net.NORM_MEAN, out=buf)
        buf *= 1.0 / net.NORM_STD
        if self._in_q is None:
            self._it.set_tensor(self._in_index, self._buf)
        else:
            scale, zp = self._in_q
            q = np.clip(np.round(self._buf / scale) + zp, -128, 127).astype(self._in["dtype"])
            self._it.set_tensor(self._in_index, q)
        self._it.invoke()
        out = self._it.get_tensor(self._out_index).reshape(-1)
        if self._out_q is not None:
            scale, zp = self._out_q
            out = (out.astype(np.float32) - zp) * scale
        return out

    def predict_batch(self, windows_db: np.ndarray) -> np.ndarray:
        return np.stack([self.predict(w).copy() for w in windows_db]) if len(windows_db) else \
            np.zeros((0, len(self.labels)), np.float32)

    def describe(self) -> dict:
        meta = {k: v for k, v in self.metadata.items() if k not in ("labels",)}
        return {"version": self.version, "labels": list(self.labels), "runtime": self.runtime,
                "bytes": self.size, **meta}
