"""Recovery of a damaged example store: every readable row into a new store, the damaged file kept.

Not done by the daemon on its own (see :mod:`edge.teach.store`): `edge-slider dataset recover` runs it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from edge.errors import StoreError
from edge.fileio import fsync_dir
from edge.teach.store import WINDOW_BYTES, ExampleStore
from edge.teach.store_db import damaged_message

log = logging.getLogger(__name__)

_PAGE_SIZES = (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512)


def recover_store(path: str | Path) -> dict[str, Any]:
    """Copy every readable row of a damaged store into a new one at ``path``; keep the damaged file.

    The damaged file (and its -wal/-shm) is renamed to ``<name>.damaged-<time>``, never changed.
    A header that no longer says what the file is (page size, counts) is rebuilt in a temporary
    copy from a fresh header, trying the page sizes SQLite allows. Returns
    ``{"recovered": n, "unreadable": m, "kept": Path, "labels": {label: n}}``.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such file: nothing to recover")
    try:
        ExampleStore(path).close()
    except StoreError as exc:
        if "store damaged" not in str(exc):
            raise                                # read-only, missing dir...: recovery would not help
    else:
        raise StoreError(f"{path} passes quick_check: it is not damaged, nothing to recover")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    scratch = path.with_name(f"{path.name}.recovering-{stamp}")
    fresh = path.with_name(f"{path.name}.new-{stamp}")
    try:
        src = _open_readable(path, scratch)
        try:
            rows, unreadable = _salvage(src)
        finally:
            src.close()
        with ExampleStore(fresh) as out:
            out._write("recovered examples", lambda db: db.executemany(
                "INSERT INTO examples(id, label, window, created, source, session) VALUES (?,?,?,?,?,?)", rows))
            out._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        kept = path.with_name(f"{path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                os.replace(side, f"{kept}{suffix}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{fresh}{suffix}").exists():
                os.replace(f"{fresh}{suffix}", f"{path}{suffix}")
        fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"cannot recover {path}: {exc.strerror}; the damaged file is unchanged") from None
    finally:
        for p in (scratch, fresh):
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{p}{suffix}").unlink(missing_ok=True)
    labels: dict[str, int] = {}
    for r in rows:
        labels[r[1]] = labels.get(r[1], 0) + 1
    log.info("recovered %d examples from %s (%d unreadable); damaged file kept as %s", len(rows), path,
             unreadable, kept)
    return {"recovered": len(rows), "unreadable": unreadable, "kept": kept, "labels": labels}


def _open_readable(path: Path, scratch: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``, or to a copy of it with a rebuilt header."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT name FROM sqlite_master").fetchall()
        return db
    except sqlite3.DatabaseError as exc:
        db.close()
        if "not a database" not in str(exc):
            raise StoreError(damaged_message(path, str(exc))) from None
    data = path.read_bytes()
    for size in _PAGE_SIZES:
        if len(data) % size:
            continue
        scratch.write_bytes(_fresh_header(size, len(data) // size) + data[100:])
        db = sqlite3.connect(f"file:{scratch}?mode=ro", uri=True)
        try:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'examples'").fetchone():
                return db
        except sqlite3.DatabaseError:
            pass
        db.close()
    raise StoreError(f"{path}: header and schema both unreadable: no examples can be recovered; "
                     "the file is unchanged")


def _fresh_header(page_size: int, pages: int) -> bytes:
    """A valid 100-byte header for a ``pages``-page file (rollback journal, UTF-8, no free list)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "h.sqlite"
        db = sqlite3.connect(p)
        db.execute(f"PRAGMA page_size={page_size}")
        db.execute("CREATE TABLE t(x)")
        db.commit()
        db.close()
        head = bytearray(p.read_bytes()[:100])
    head[28:32] = pages.to_bytes(4, "big")
    head[92:96] = head[24:28]                    # "version-valid-for" = change counter: trust the page count
    return bytes(head)


def _salvage(db: sqlite3.Connection) -> tuple[list[tuple], int]:
    """Rows one by one by id, so a bad page costs only its own rows. Ids come from the table and
    from the label index (either may be the damaged part), scanned until they fail."""
    ids: set[int] = set()
    for q in ("SELECT id FROM examples ORDER BY id", "SELECT id FROM examples ORDER BY id DESC",
              "SELECT id FROM examples INDEXED BY examples_label", "SELECT id FROM examples INDEXED BY examples_session"):
        try:
            for (i,) in db.execute(q):
                ids.add(int(i))
        except sqlite3.DatabaseError:
            continue
    rows, unreadable = [], 0
    for i in sorted(ids):
        try:
            row = db.execute("SELECT id, label, window, created, source, session FROM examples WHERE id = ?",
                             (i,)).fetchone()
        except sqlite3.DatabaseError:
            unreadable += 1
            continue
        if row is None or not isinstance(row[1], str) or not isinstance(row[2], bytes) or len(row[2]) != WINDOW_BYTES:
            unreadable += 1
            continue
        rows.append(row)
    return rows, unreadable
