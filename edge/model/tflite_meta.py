"""Read a .tflite's metadata entries with ``struct`` alone (no schema package at run time).

The daemon needs only one thing from the flatbuffer besides what the interpreter exposes: our
``edge_slider`` metadata JSON. Importing the generated schema package for that costs ~3 MB of RSS
on a device that has to fit in 60 MB, so this walks the few tables by hand
(Model.metadata → Metadata{name, buffer} → Model.buffers[i].data).
"""

from __future__ import annotations

import struct

METADATA_NAME = "edge_slider"
"""The metadata entry that holds our JSON description of a model."""

# Field indices in the TFLite schema (schema.fbs): Model.buffers = 4, Model.metadata = 6,
# Metadata.name = 0, Metadata.buffer = 1, Buffer.data = 0.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6


class _Table:
    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vlen = struct.unpack_from("<H", buf, self.vtable)[0]

    def field(self, i: int) -> int | None:
        slot = 4 + 2 * i
        if slot >= self.vlen:
            return None
        off = struct.unpack_from("<H", self.buf, self.vtable + slot)[0]
        return self.pos + off if off else None

    def uint32(self, i: int) -> int | None:
        at = self.field(i)
        return None if at is None else struct.unpack_from("<I", self.buf, at)[0]

    def vector(self, i: int) -> tuple[int, int] | None:
        """(start of elements, length)."""
        at = self.field(i)
        if at is None:
            return None
        vec = at + struct.unpack_from("<I", self.buf, at)[0]
        return vec + 4, struct.unpack_from("<I", self.buf, vec)[0]

    def table_at(self, i: int, k: int) -> "_Table":
        vec = self.vector(i)
        if vec is None:
            raise IndexError(k)
        start, n = vec
        if not 0 <= k < n:
            raise IndexError(k)
        elem = start + 4 * k
        return _Table(self.buf, elem + struct.unpack_from("<I", self.buf, elem)[0])

    def bytes(self, i: int) -> bytes:
        v = self.vector(i)
        if v is None:
            return b""
        start, n = v
        if start + n > len(self.buf):
            raise ValueError("vector runs past the end of the file")
        return self.buf[start:start + n]


def read_metadata_entries(data: bytes) -> dict[str, bytes]:
    """name → raw bytes of every metadata entry. Raises ValueError/struct.error on a damaged file."""
    model = _Table(data, struct.unpack_from("<I", data, 0)[0])
    meta = model.vector(_MODEL_METADATA)
    out: dict[str, bytes] = {}
    for k in range(meta[1] if meta else 0):
        entry = model.table_at(_MODEL_METADATA, k)
        name = entry.bytes(0).decode("utf-8", "replace")
        index = entry.uint32(1)
        if index is not None:
            out[name] = model.table_at(_MODEL_BUFFERS, index).bytes(0)
    return out
