"""The audio of recent button holds, kept so the console can play back what a session recorded.

A hold's samples are gathered while it lasts (at most ``collect.max_hold_s``), then written as one
16-bit WAV per session under ``<state_dir>/holds/`` (atomic: temp + fsync + rename). The folder is
bounded by ``web.hold_audio_mb``: the oldest sessions' audio goes first. The examples themselves live
in the store; losing a WAV loses only the playback, so a failed write is a warning, never an error
for the hold.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from edge.audio.wavfile import WavError, write_wav
from edge.statedir import StateDir

log = logging.getLogger(__name__)

SESSION_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
"""Session ids as the hold makes them (``20261207T081500-a1b2c3``); anything else names no file."""


class HoldRecorder:
    """Samples of one hold in progress, capped (the loop only appends a reference per block)."""

    def __init__(self, max_samples: int):
        self._blocks: list[np.ndarray] = []
        self._left = max_samples

    def add(self, samples: np.ndarray) -> None:
        if self._left > 0:
            block = samples[: self._left]
            self._blocks.append(np.array(block, dtype=np.float32))   # a copy: the source reuses its buffer
            self._left -= block.shape[0]

    def samples(self) -> np.ndarray:
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)


class HoldAudioShelf:
    """``<state_dir>/holds/<session>.wav``, at most ``budget_mb`` in all (0 = keep none)."""

    def __init__(self, directory: Path, budget_mb: float):
        self.directory = Path(directory)
        self.budget_bytes = int(budget_mb * 1024 * 1024)

    @classmethod
    def for_config(cls, config) -> "HoldAudioShelf":
        """The device's shelf: ``<state_dir>/holds``, ``web.hold_audio_mb``."""
        return cls(StateDir(config.state_path).holds, config.web.hold_audio_mb)

    def path(self, session: str) -> Path | None:
        """The session's WAV, or None (no audio kept for it, or not a session id)."""
        if not SESSION_RE.match(session):
            return None
        p = self.directory / f"{session}.wav"
        return p if p.is_file() else None

    def save(self, session: str, samples: np.ndarray) -> Path | None:
        if self.budget_bytes <= 0 or samples.shape[0] == 0 or not SESSION_RE.match(session):
            return None
        target = self.directory / f"{session}.wav"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_wav(target, samples)
        except (OSError, WavError) as exc:
            log.warning("hold audio of session %s not kept (%s); its examples are stored", session, exc)
            return None
        self.prune()
        return target if target.exists() else None

    def prune(self) -> int:
        """Delete the oldest WAVs until the folder fits the budget; returns how many went."""
        files = sorted(self.directory.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        gone = 0
        while files and total > self.budget_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            gone += 1
        return gone

    def delete(self, session: str) -> None:
        p = self.path(session)
        if p is not None:
            p.unlink(missing_ok=True)
