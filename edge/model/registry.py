"""Numbered model versions under the state dir, a ``current`` pointer, rollback, pruning.

    models/
      v0001.tflite  v0002.tflite  v0003.tflite   (+ vNNNN.labels for a foreign model)
      current                                    (text: the version in service, e.g. "3")
      history                                    (versions in the order they went into service)

Install = validate (the runtime loads it and it fits the front end) → temp file + fsync + rename
→ move the pointer the same way. A corrupt or truncated file is refused before the pointer moves,
so the model in service never changes to something that cannot run.

What a power cut or a bad card can still do to files already there (garbage bytes in ``current``,
a truncated or vanished model) must not stop the daemon: :meth:`load_serving` falls back along
``history`` to the newest whole model and says why, and touches nothing (the damaged files stay
as evidence; the next install or rollback rewrites the pointer).

Rollback follows ``history``, not the numbers: a kill -9 between a file's rename and the pointer's
move leaves a whole version that never served (v5 served, v6 orphaned, v7 installed), and after
a rollback from v5 to v4 a new v6 should roll back to v4, not to the v5 the user rejected.
``current`` is written before ``history``, and rollback trusts ``current``, so a kill between the
two writes still rolls back to the right model.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from edge.errors import ModelError
from edge.fileio import atomic_write_bytes, remove_stale_temps
from edge.model.classifier import Classifier

log = logging.getLogger(__name__)

_NAME = re.compile(r"^v(\d{4,})\.tflite$")
HISTORY_MAX = 200


class ModelRegistry:
    def __init__(self, root: str | Path, keep: int = 5):
        self.root = Path(root)
        self.keep = max(1, keep)

    def _path(self, version: int) -> Path:
        return self.root / f"v{version:04d}.tflite"

    def versions(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _NAME.match(p.name)))

    def current_version(self) -> int | None:
        try:
            raw = (self.root / "current").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ModelError(f"{self.root / 'current'}: cannot read ({exc.strerror})") from None
        # NOTE: bytes first: a power cut can leave anything here, not even UTF-8 (a traceback and a
        # systemd restart loop before this was decoded leniently).
        text = raw.decode("ascii", "replace").strip()
        if not text.isdigit():
            raise ModelError(f"{self.root / 'current'}: holds {text[:20]!r}, not a version number (damaged); "
                             "`edge-slider model rollback` points it at the newest whole model, `model list` "
                             "shows them all")
        return int(text)

    def load(self, version: int, expect_hop: int | None = None) -> Classifier:
        path = self._path(version)
        if not path.is_file():
            raise ModelError(f"model v{version} not found in {self.root} (see `edge-slider model list`)")
        labels_file = path.with_suffix(".labels")
        return Classifier.from_file(path, labels_file if labels_file.is_file() else None,
                                    expect_hop=expect_hop, version=version)

    def load_current(self, expect_hop: int | None = None) -> Classifier | None:
        """The model in service, or None when none was ever installed."""
        version = self.current_version()
        return None if version is None else self.load(version, expect_hop)

    def load_serving(self, expect_hop: int | None = None) -> tuple[Classifier | None, str | None]:
        """What the daemon serves: the current model, else the newest whole one along ``history``.

        Returns ``(classifier or None, problem or None)``; never raises a ModelError. The problem is
        one line naming what is damaged and which model serves instead.
        """
        try:
            version = self.current_version()
            if version is None and not self.versions():
                return None, None                   # a fresh device: nothing was ever installed
            if version is None:
                raise ModelError(f"{self.root / 'current'} is missing")
            return self.load(version, expect_hop), None
        except ModelError as exc:
            damage = str(exc)
        try:
            bad = self.current_version()
        except ModelError:
            bad = None
        for v in self._fallbacks(bad):
            try:
                clf = self.load(v, expect_hop)
            except ModelError as exc:
                log.warning("fallback model v%d unusable too: %s", v, exc)
                continue
            return clf, f"{damage}; serving v{v} instead (the newest whole model in history; " \
                        "`edge-slider model list` shows them all)"
        return None, f"{damage}; no whole model to fall back to: train again (`edge-slider train` or the Train button)"

    def _fallbacks(self, bad: int | None) -> list[int]:
        """Candidates newest first: what served (history), then — for a registry from before the
        history file — the rest by number; never ``bad``."""
        kept = set(self.versions())
        order = [v for v in reversed(self._history()) if v in kept and v != bad]
        return list(dict.fromkeys(order))

    def install(self, data: bytes, labels: list[str] | None = None, expect_hop: int | None = None) -> int:
        """Validate, store as the next version, point ``current`` at it, prune old ones."""
        Classifier(data, name="new model", labels=labels, expect_hop=expect_hop)   # refuses what cannot run
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # a kill -9 mid-write leaves its temp file; on a device that runs for months they add up
            remove_stale_temps(self.root)
            version = max(self.versions(), default=0) + 1
            history = self._history()
            if labels is not None:
                atomic_write_bytes(self._path(version).with_suffix(".labels"), ("\n".join(labels) + "\n").encode())
            atomic_write_bytes(self._path(version), data)
            self._point(version)
        except OSError as exc:
            raise ModelError(f"cannot install model in {self.root}: {exc.strerror}; the previous model stays") \
                from None
        self._write_history(history + [version])
        self._prune(version)
        log.info("model v%d installed (%d bytes)", version, len(data))
        return version

    def _point(self, version: int) -> None:
        atomic_write_bytes(self.root / "current", f"{version}\n".encode())

    def _history(self) -> list[int]:
        """Versions in the order they went into service (before the history file: by number)."""
        try:
            return [int(x) for x in (self.root / "history").read_text().split() if x.isdigit()]
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("model history unreadable (%s): rollback goes by version number", exc.strerror)
        try:
            current = self.current_version()
        except ModelError:
            current = None
        return [v for v in self.versions() if current is None or v <= current]

    def _write_history(self, versions: list[int]) -> None:
        """Best effort: the pointer has already moved, and rollback copes with a stale history."""
        try:
            atomic_write_bytes(self.root / "history", "".join(f"{v}\n" for v in versions[-HISTORY_MAX:]).encode())
        except OSError as exc:
            log.warning("model history not updated (%s)", exc.strerror)

    def rollback(self) -> int:
        """Point ``current`` at the model that served before it; returns that version.

        With a damaged pointer it points at what the daemon serves instead (the newest whole model
        in history): the repair the pointer's own error message sends the user here for."""
        try:
            current = self.current_version()
        except ModelError as exc:
            for v in self._fallbacks(None):
                try:
                    self.load(v)
                except ModelError:
                    continue
                self._point(v)
                log.warning("%s; pointer repaired: v%d (the newest whole model in history) is current", exc, v)
                return v
            raise
        kept = set(self.versions())
        history = self._history()
        if current in history:   # forget it and whatever a half-done rollback left after it
            history = history[:len(history) - 1 - history[::-1].index(current)]
        served = [v for v in history if v in kept and v != current]
        if not served:
            raise ModelError("no older model to roll back to" + (f" (v{current} is the oldest kept)" if current else ""))
        version = served[-1]
        self.load(version)  # refuse to point at a damaged file
        self._point(version)
        self._write_history(history[:len(history) - history[::-1].index(version)])
        log.info("rolled back to model v%d", version)
        return version

    def _prune(self, current: int) -> None:
        for v in self.versions()[:-self.keep]:
            if v == current:
                continue
            self._path(v).unlink(missing_ok=True)
            self._path(v).with_suffix(".labels").unlink(missing_ok=True)

    def read(self, version: int | None = None) -> bytes:
        version = self.current_version() if version is None else version
        if version is None:
            raise ModelError(f"no model installed in {self.root}: run `edge-slider train` first")
        try:
            return self._path(version).read_bytes()
        except OSError as exc:
            raise ModelError(f"model v{version}: cannot read ({exc.strerror})") from None
