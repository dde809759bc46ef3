"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A reader (or a reboot) sees the old file or the new one, never half of either. Used for models,
datasets, WAV recordings and the slider position.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically. Raises OSError (callers turn it into their one-line error)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_stale_temps(directory: Path, older_than_s: float = 60.0) -> int:
    """Delete the temp files a killed ``atomic_write_bytes`` left behind; returns how many.

    Only files older than ``older_than_s`` go, so a writer still busy in another process keeps its own.
    """
    removed = 0
    cutoff = time.time() - older_than_s
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return 0
    for p in entries:
        if not (p.name.startswith(".") and p.name.endswith(".tmp")):
            continue
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (ext4 does not promise it without this)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
