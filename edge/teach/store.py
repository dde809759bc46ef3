"""The example store: one SQLite row per labelled [3, 232] dB window, crash-safe.

SQLite (stdlib) in WAL mode with ``synchronous=FULL``: every ``add_many`` / ``delete`` / import
chunk is one transaction, so a power cut or SIGKILL leaves either the whole batch or none of it
(tested with SIGKILL during a bulk import). Windows are stored as raw float32 bytes (2,784 B each);
the shape is checked on the way in and on the way out.

The ``.npz`` format is the one of ``shared/bench/seed-*.npz``: ``x`` [N,3,232] float32 dB,
``y`` [N] int, ``labels`` [K] str.

Damage the store itself can suffer, and what each costs (never the daemon: see service.py):

* a state dir on a read-only mount, or one another user owns: the store cannot open; the fix is a
  remount or ``chown`` (the message says which, from statvfs);
* a damaged header ("file is not a database") or a corrupt page (``PRAGMA quick_check`` at open,
  ~5 ms on 1,500 windows): the fix is ``edge-slider dataset recover`` (:func:`edge.teach.store_recovery.recover_store`),
  which copies every readable row into a new store and keeps the damaged file beside it. Not
  done by the daemon on its own: how much is readable is for a person to judge, and a new store
  that silently took over would train the next model on whatever was salvaged.
  (``sqlite3 .recover`` of Debian 12 / Raspberry Pi OS bookworm, 3.40.1, fails with "SQL logic
  error" even on a healthy file here, and nothing reads a file whose header is gone.)
"""

from __future__ import annotations

import hashlib
import io
import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from edge.config import NUM_BINS, NUM_FRAMES
from edge.errors import StoreError
from edge.fileio import atomic_write_bytes
from edge.teach.npz_dataset import read_npz
from edge.teach.store_db import StoreDb

log = logging.getLogger(__name__)

WINDOW_SHAPE = (NUM_FRAMES, NUM_BINS)
WINDOW_BYTES = NUM_FRAMES * NUM_BINS * 4
IMPORT_CHUNK = 256
"""Rows per transaction on import: big enough to be fast, small enough to report progress."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS examples (
    id       INTEGER PRIMARY KEY,
    label    TEXT    NOT NULL,
    window   BLOB    NOT NULL,
    created  REAL    NOT NULL,
    source   TEXT    NOT NULL,
    session  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_label ON examples(label);
CREATE INDEX IF NOT EXISTS examples_session ON examples(session);
"""


class ExampleStore(StoreDb):
    """Labelled windows under the state dir. Not thread-safe: the engine's loop thread owns it.

    Opening, transactions and the one-line errors are :class:`edge.teach.store_db.StoreDb`'s."""

    problem: str | None = None
    """Always None here; :class:`UnavailableStore` carries why the store cannot be used."""

    _schema = _SCHEMA

    # ------------------------------------------------------------------ writes
    def add_many(self, label: str, windows: np.ndarray | Iterable[np.ndarray], source: str, session: str) -> int:
        """Store windows under one label in one transaction; returns how many."""
        return self.add_groups([(label, windows)], source, session)[0]

    def add_groups(self, groups: list[tuple[str, np.ndarray | Iterable[np.ndarray]]], source: str,
                   session: str) -> list[int]:
        """Store several (label, windows) groups in ONE transaction — a hold's sound and its quiet
        background go in together or not at all; returns how many per group."""
        rows = [(label, [_blob(w) for w in windows]) for label, windows in groups]
        now = time.time()
        what = " + ".join(f"{len(blobs)} {label!r}" for label, blobs in rows if blobs) + " examples"
        insert = "INSERT INTO examples(label, window, created, source, session) VALUES (?,?,?,?,?)"

        def write(db) -> list[int]:
            return [db.executemany(insert, [(label, b, now, source, session) for b in blobs]).rowcount
                    if blobs else 0 for label, blobs in rows]
        return self._write(what, write)

    def delete(self, label: str | None = None, session: str | None = None) -> int:
        """Delete by label and/or session; with neither, delete everything. Returns rows deleted."""
        where, params = _where(label, session)
        return self._write("delete", lambda db: db.execute(f"DELETE FROM examples{where}", params).rowcount)

    def relabel(self, session: str, to_label: str, keep: str | None = None) -> int:
        """Move one session's windows to ``to_label`` in one transaction, except those under ``keep``
        (a hold's quiet background stays background); returns rows moved."""
        sql, params = "UPDATE examples SET label = ? WHERE session = ?", [to_label, session]
        if keep is not None:
            sql, params = sql + " AND label != ?", params + [keep]
        return self._write("move", lambda db: db.execute(sql, params).rowcount)

    def session_windows(self, session: str, limit: int = -1) -> list[tuple[str, np.ndarray]]:
        """One session's windows in the order they were stored (at most ``limit``), with their labels."""
        rows = self._read(lambda db: db.execute(
            "SELECT label, window FROM examples WHERE session = ? ORDER BY id LIMIT ?", (session, limit)).fetchall())
        return [(label, _window(self.path, label, blob)) for label, blob in rows]

    # ------------------------------------------------------------------ reads
    def counts(self) -> dict[str, int]:
        rows = self._read(lambda db: db.execute(
            "SELECT label, COUNT(*) FROM examples GROUP BY label ORDER BY label").fetchall())
        return {label: n for label, n in rows}

    def __len__(self) -> int:
        return self._read(lambda db: db.execute("SELECT COUNT(*) FROM examples").fetchone()[0])

    def last_id(self) -> int:
        return self._read(lambda db: db.execute("SELECT COALESCE(MAX(id), 0) FROM examples").fetchone()[0])

    def last_session(self) -> str | None:
        row = self._read(lambda db: db.execute("SELECT session FROM examples ORDER BY id DESC LIMIT 1").fetchone())
        return row[0] if row else None

    def sessions(self) -> list[dict]:
        rows = self._read(lambda db: db.execute(
            "SELECT session, label, source, COUNT(*), MIN(created) FROM examples "
            "GROUP BY session, label ORDER BY MIN(id)").fetchall())
        return [{"session": s, "label": lb, "source": src, "count": n, "created": c} for s, lb, src, n, c in rows]

    def load(self, labels: Iterable[str] | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """All windows as ``(x [N,3,232] float32, y [N] int, labels)``; labels default to those present."""
        x, y, labels, _ = self.load_with_sessions(labels)
        return x, y, labels

    def load_with_sessions(self, labels: Iterable[str] | None = None
                           ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
        """As :meth:`load`, plus each window's session (its hold): validation holds out whole holds."""
        labels = tuple(labels) if labels is not None else tuple(self.counts())
        return self._read(lambda db: self._load(db, labels))

    def _load(self, db: sqlite3.Connection, labels: tuple[str, ...]):
        index = {lb: i for i, lb in enumerate(labels)}
        xs, ys, sessions = [], [], []
        for label, blob, session in db.execute("SELECT label, window, session FROM examples ORDER BY id"):
            if label not in index:
                continue
            sessions.append(session)
            xs.append(_window(self.path, label, blob))
            ys.append(index[label])
        x = np.stack(xs) if xs else np.zeros((0, *WINDOW_SHAPE), np.float32)
        return x, np.asarray(ys, dtype=np.int64), labels, np.asarray(sessions, dtype=object)

    def integrity_ok(self) -> bool:
        try:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            return False

    # ------------------------------------------------------------------ files
    def export_npz(self, path: str | Path, labels: Iterable[str] | None = None, background: str | None = None) -> int:
        """Write every window to ``path``: ``.npz`` (seed format), or ``.bin`` = TF.js TFJSSCDS."""
        x, y, labels = self.load(labels)
        if str(path).endswith(".bin"):
            from edge.teach.tfjs_dataset import tfjs_dataset_bytes
            data = tfjs_dataset_bytes(x, y, labels, background)
        else:
            buf = io.BytesIO()
            np.savez_compressed(buf, x=x, y=y, labels=np.asarray(labels, dtype=str))
            data = buf.getvalue()
        try:
            atomic_write_bytes(Path(path), data)
        except OSError as exc:
            raise StoreError(f"{path}: cannot write ({exc.strerror})") from None
        return int(x.shape[0])

    def import_npz(self, path: str | Path, source: str = "import", session: str | None = None,
                   progress: Callable[[int, int], None] | None = None, background: str | None = None) -> dict[str, int]:
        """Import a seed-format .npz (or a TF.js TFJSSCDS file), one transaction per chunk.

        Returns the counts imported per label.
        """
        from edge.teach.tfjs_dataset import is_tfjs_dataset, read_tfjs_dataset
        x, y, labels = read_tfjs_dataset(path, background) if is_tfjs_dataset(path) else read_npz(path)
        digest = _sha256(path)
        session = session or f"import-{time.strftime('%Y%m%dT%H%M%S')}-{Path(path).stem}"
        added: dict[str, int] = {}
        for start in range(0, x.shape[0], IMPORT_CHUNK):
            xs, ys = x[start:start + IMPORT_CHUNK], y[start:start + IMPORT_CHUNK]
            now = time.time()
            rows = [(labels[int(k)], _blob(w), now, source, session) for w, k in zip(xs, ys)]

            def write(db, rows=rows, first=start == 0):
                if first:   # the file's hash goes in with its first rows, or neither does
                    _claim_import(db, digest, path, session)
                return db.executemany("INSERT INTO examples(label, window, created, source, session) "
                                      "VALUES (?,?,?,?,?)", rows).rowcount
            self._write(f"import chunk at row {start}", write)
            for k in ys:
                added[labels[int(k)]] = added.get(labels[int(k)], 0) + 1
            if progress:
                progress(min(start + IMPORT_CHUNK, x.shape[0]), x.shape[0])
        return added


class UnavailableStore:
    """Stands in for a store that cannot open, so the daemon still starts and listens: every use
    raises the one-line cause and fix (``problem``); nothing on disk is touched."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem

    def _refuse(self, *args, **kw):
        raise StoreError(self.problem)

    counts = __len__ = last_session = sessions = session_windows = load = add_many = add_groups = delete = _refuse
    export_npz = import_npz = _refuse

    def integrity_ok(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _window(path: Path, label: str, blob: bytes) -> np.ndarray:
    if len(blob) != WINDOW_BYTES:
        raise StoreError(f"example store {path}: a {label!r} row holds {len(blob)} bytes, "
                         f"not {WINDOW_BYTES}; delete that label and collect again")
    return np.frombuffer(blob, dtype=np.float32).reshape(WINDOW_SHAPE)


def _claim_import(db: sqlite3.Connection, digest: str, path: str | Path, session: str) -> None:
    """Refuse a file whose content is already in the store (importing twice doubled every example).
    A hash whose session is gone (cleared) no longer counts."""
    # NOTE: created here, not in _SCHEMA: a store that never imported has no such table, and an
    # older store gains it on its first import.
    db.execute(_IMPORTS_TABLE)
    row = db.execute("SELECT session, created FROM imports WHERE hash = ?", (digest,)).fetchone()
    if row and db.execute("SELECT 1 FROM examples WHERE session = ? LIMIT 1", (row[0],)).fetchone():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row[1]))
        raise StoreError(f"{path}: already imported on {when} as session {row[0]}; "
                         f"`edge-slider dataset clear --session {row[0]}` to redo")
    db.execute("INSERT OR REPLACE INTO imports(hash, session, created, name) VALUES (?,?,?,?)",
               (digest, session, time.time(), str(path)))


def _blob(window: np.ndarray) -> bytes:
    w = np.asarray(window, dtype=np.float32)
    if w.shape != WINDOW_SHAPE:
        raise StoreError(f"window has shape {list(w.shape)}, expected {list(WINDOW_SHAPE)}")
    return np.ascontiguousarray(w).tobytes()


_IMPORTS_TABLE = """CREATE TABLE IF NOT EXISTS imports (
    hash     TEXT PRIMARY KEY,
    session  TEXT NOT NULL,
    created  REAL NOT NULL,
    name     TEXT NOT NULL
)"""
"""The SHA-256 of each imported file, with the session its examples went to."""


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def _where(label: str | None, session: str | None) -> tuple[str, tuple]:
    clauses, params = [], []
    if label is not None:
        clauses.append("label = ?")
        params.append(label)
    if session is not None:
        clauses.append("session = ?")
        params.append(session)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
