"""The state directory's layout: the one place that names the files the daemon keeps there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateDir:
    """``device.state_dir`` (or ``--state-dir``): examples, models and the slider's position."""

    root: Path

    @property
    def store(self) -> Path:
        """The SQLite example store (WAL mode: ``-wal``/``-shm`` files sit beside it)."""
        return self.root / "examples.sqlite"

    @property
    def models(self) -> Path:
        """The model registry: one directory per trained version and the ``current`` pointer."""
        return self.root / "models"

    @property
    def holds(self) -> Path:
        """Recent holds' audio for the console's playback (``<session>.wav``, bounded by web.hold_audio_mb)."""
        return self.root / "holds"

    @property
    def position(self) -> Path:
        """The slider position, restored at start."""
        return self.root / "position.json"

    @property
    def demo_marker(self) -> Path:
        """Written by ``demo --into``: the state dir holds only what the demo made, so it may redo it."""
        return self.root / ".edge-slider-demo"
