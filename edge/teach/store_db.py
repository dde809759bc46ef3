"""The example store's SQLite file: opening it (WAL, ``synchronous=FULL``, a quick check), one
transaction per write, and every SQLite or OS error turned into one line with its fix.

:class:`edge.teach.store.ExampleStore` builds on it; the damage it names, and what each costs, is in
:mod:`edge.teach.store`.
"""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path
from typing import Any, Callable, Self

from edge.errors import StoreError


class StoreDb:
    """One SQLite connection to ``path`` with the subclass's ``_schema`` applied at open."""

    _schema = ""
    """SQL script run at every open (``CREATE ... IF NOT EXISTS``)."""

    def __init__(self, path: str | Path, check: bool = True):
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # NOTE: check_same_thread=False because the trainer thread reads the store; the engine
            # never writes while training (collect is refused in that mode).
            self._db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(self._schema)
            if check:
                self._quick_check()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(self._explain(exc)) from None
        except OSError as exc:
            self.close()
            if not _writable(self.path.parent):
                raise StoreError(_read_only_message(self.path, exc.strerror or str(exc))) from None
            raise StoreError(f"example store {self.path}: {exc.strerror}") from None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"example store {self.path}: used after close(); open it again")
        return self._db

    def _quick_check(self) -> None:
        """Corrupt pages are found here, once, not by `train` hours later. quick_check skips the
        index-vs-table comparison of integrity_check: measured 5 ms on 1,500 windows (6 MB)."""
        rows = [r[0] for r in self._conn.execute("PRAGMA quick_check(3)").fetchall()]
        if rows != ["ok"]:
            detail = "; ".join(r for r in rows if not r.startswith("***"))[:120] or "no answer"
            raise sqlite3.DatabaseError(f"database disk image is malformed: {detail}")

    def _explain(self, exc: sqlite3.DatabaseError) -> str:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "malformed" in text or "not a database" in text:
            return damaged_message(self.path, text)
        if not _writable(self.path.parent) or "readonly" in text or "unable to open" in text:
            return _read_only_message(self.path, text)
        return f"example store {self.path}: {text}"

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Reads a damaged page only shows up here: one line with the fix, not a DatabaseError."""
        try:
            return fn(self._conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(self._explain(exc)) from None

    # ------------------------------------------------------------------ writes
    def _write(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                n = fn(db)
            except BaseException:
                # NOTE: SQLite rolls back by itself on some errors (SQLITE_FULL): only roll back an open one.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return n
        except sqlite3.Error as exc:
            raise StoreError(f"{what} not stored ({exc}); nothing was written") from None

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def damaged_message(path: Path, detail: str) -> str:
    # NOTE: cause and fix first: MQTT replies cut error text at 300 characters
    return (f"example store damaged ({detail}); fix: stop the daemon and run `edge-slider dataset recover` "
            f"(copies every readable example into a new store, keeps the damaged file); collection and training "
            f"are off until then, listening goes on ({path})")


def _read_only_message(path: Path, detail: str) -> str:
    if _mounted_read_only(path.parent):
        return (f"example store not writable ({detail}: the file system is mounted read-only); fix: remount it "
                f"read-write (`sudo mount -o remount,rw {_mount_point(path.parent)}`) or set device.state_dir to a "
                f"writable dir; collection and training are off until then, listening goes on ({path.name})")
    user = pwd.getpwuid(os.geteuid()).pw_name
    return (f"example store not writable ({detail}: read-only, or another user's); fix: "
            f"`sudo chown -R {user}: {path.parent}`; collection and training are off until then, listening goes "
            f"on ({path.name})")


def _mounted_read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _mount_point(directory: Path) -> Path:
    p = Path(directory).resolve()
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _writable(directory: Path) -> bool:
    # NOTE: access() reports EROFS even for root, whose writes file modes do not stop
    return os.access(directory, os.W_OK) if directory.exists() else True
