"""One button hold in progress: the gate's collector, the hold's session id, where it came from, and
when it must end; then storing it (sound under its class, quiet under the background class)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import numpy as np

from edge.teach.collect import HoldCollector
from edge.config import SAMPLE_RATE, Config
from edge.teach.hold_audio import HoldAudioShelf, HoldRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredHold:
    label: str
    session: str
    stored: int
    """Windows stored under the hold's class."""
    moved: int
    """Quiet windows stored under the background class."""
    skipped: int
    """Quiet windows dropped (no background class, or over its share)."""


class HoldJob:
    def __init__(self, config: Config, label: str, source: str, *, max_windows: int,
                 ambient_levels: np.ndarray, deadline: float | None = None):
        self._config = config
        self.label = label
        self.source = source
        self.deadline = deadline
        """Stream time at which a timed collection (`collect` for N seconds) ends by itself."""
        self.session = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._audio = (HoldRecorder(int(config.collect.max_hold_s * SAMPLE_RATE))
                       if config.web.listen and config.web.hold_audio_mb > 0 else None)
        """The hold's samples, kept for the console's playback (only when the console is on)."""
        background = config.class_spec(label).background
        self._collector = HoldCollector(config.collect, label, gated=not background, max_windows=max_windows,
                                        ambient_levels=ambient_levels)

    def add_audio(self, samples: np.ndarray) -> None:
        if self._audio is not None:
            self._audio.add(samples)

    def add(self, window: np.ndarray, level_db: float, t: float) -> bool:
        """Keep one hop's window; False when the hold must end now (too long, or its time is up)."""
        if not self._collector.add(window, level_db):
            log.warning("hold of %r longer than collect.max_hold_s = %s s: stopping collection",
                        self.label, self._config.collect.max_hold_s)
            return False
        return self.deadline is None or t < self.deadline

    def store(self, store) -> StoredHold:
        """Gate the hold and store it in one transaction (a :class:`StoreError` stores nothing)."""
        result = self._collector.finish()
        background = self._config.background_label
        stored, moved = store.add_groups(result.to_store(self._config.collect, background), self.source,
                                         self.session)
        skipped = len(result.quiet) - moved
        if self._audio is not None:
            HoldAudioShelf.for_config(self._config).save(self.session, self._audio.samples())
        gate = f"floor {result.floor_db:.1f} dB" if np.isfinite(result.floor_db) else "not gated"
        log.info("collected %r: %d windows stored, %d quiet → %s, %d dropped (%s, session %s)",
                 result.label, stored, moved, background, skipped, gate, self.session)
        return StoredHold(result.label, self.session, stored, moved, skipped)
