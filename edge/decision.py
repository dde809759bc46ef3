"""The decision policy: from per-hop class probabilities to slider actions.

Per-hop argmax fires dozens of times a second on anything loud. A hop counts as a *detection* of
class c when c is the most probable class, its probability is at least ``threshold``, the window
is louder than ``min_level_db``, and c has an action (the background class never acts). Then:

* **k-of-n smoothing**: c wins when it was detected in at least k of the last n hops.
* **refractory time**: after an action, nothing acts for ``refractory_s`` seconds (stream time).
* **mode** ``continuous`` (the codelab): act on every hop while c keeps winning (still limited by
  the refractory time); ``per_sound``: act once, then re-arm only when the sound is over:
  ``smooth_n`` hops in a row without any detection **and** the level has fallen
  ``rearm_drop_db`` below the sound's peak (or ``REARM_MAX_S`` passed without detections) — a
  long whistle is one step, two snaps are two. Measured why both: re-arming as soon as no class
  *won* fired twice on one whistle (its fading tail looks like a snap's ringing body); with the
  detection gap alone, a model trained with gain jitter still stepped twice on 9 of 50 whistles
  and snaps whose probability wobbled mid-sound while the level stayed up.
  A class that wins while the refractory time still blocks it uses up the re-arm: that sound is
  suppressed as a whole. Measured why: 5 of ~78 whistles stepped twice exactly ``refractory_s``
  apart — a wobble with a level dip re-armed mid-whistle, and the detections that went on acted
  the moment the refractory time ran out.

The score a decision carries (``Verdict.act_score``) is the best probability among the k-of-n
detections that made it, never the current hop's (which, in ``continuous`` mode or at the end of
the refractory time, may be under the threshold or of another class).

Time is the stream time of the window's end, so replays decide exactly as live audio does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edge.config import ClassSpec, ListenSettings


REARM_MAX_S = 1.0
"""per_sound: re-arm after this long without detections even if the level never fell (steady loud
background, e.g. music louder than the sound that acted)."""


@dataclass(frozen=True)
class Verdict:
    """What one hop decided."""

    label: str
    """Most probable class this hop."""
    score: float
    detected: str | None
    """The class detected this hop (passes threshold and level), if any."""
    act: str | None
    """The class whose action must run now, if any."""
    act_score: float = 0.0
    """With ``act``: the best score among the detections of that class in the k-of-n window."""


class DecisionPolicy:
    def __init__(self, settings: ListenSettings, classes: tuple[ClassSpec, ...]):
        self.settings = settings
        self.labels = tuple(c.name for c in classes)
        self._acting = np.array([c.action != "none" and not c.background for c in classes])
        self._thresholds = np.full(len(self.labels), settings.threshold, dtype=np.float64)
        self._threshold = settings.threshold
        self._history: deque[tuple[int, float]] = deque()
        """(class detected or -1, its score) for the last n hops."""
        self._counts = [0] * len(self.labels)
        """Detections per class over the last n hops (kept incrementally: this runs every hop)."""
        self._last_action_t = -1e9
        self._armed = True
        self._peak_db = -np.inf
        self._quiet_since = None

    @property
    def threshold(self) -> float:
        """The one threshold set by config or command (per-class ones may differ: :attr:`thresholds`)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        # NOTE: a threshold the user sets by hand applies to every class, over the calibrated ones.
        self._threshold = float(value)
        self._thresholds[:] = self._threshold

    @property
    def thresholds(self) -> dict[str, float]:
        return {lb: float(t) for lb, t, a in zip(self.labels, self._thresholds, self._acting) if a}

    def set_thresholds(self, per_class: dict[str, float] | None) -> None:
        """Per-class thresholds (a model's calibration); classes not named keep :attr:`threshold`."""
        self._thresholds[:] = self._threshold
        for i, lb in enumerate(self.labels):
            if per_class and lb in per_class:
                self._thresholds[i] = float(per_class[lb])

    def reset(self) -> None:
        self._history.clear()
        self._counts = [0] * len(self.labels)
        self._armed = True
        self._last_action_t = -1e9
        self._peak_db = -np.inf
        self._quiet_since = None

    def update(self, probs: np.ndarray, level_db: float, t: float) -> Verdict:
        top = int(np.argmax(probs))
        score = float(probs[top])
        hit = (self._acting[top] and score >= self._thresholds[top] and level_db >= self.settings.min_level_db)
        self._push(top if hit else -1, score)
        winner = self._winner()
        act, act_score = None, 0.0
        if not self._armed:
            self._peak_db = max(self._peak_db, level_db)
            if any(self._counts):
                self._quiet_since = None
            else:
                if self._quiet_since is None:
                    self._quiet_since = t
                dropped = level_db <= self._peak_db - self.settings.rearm_drop_db
                if dropped or t - self._quiet_since >= REARM_MAX_S - 1e-9:
                    self._armed = True
        if winner is None:
            pass
        elif t - self._last_action_t >= self.settings.refractory_s - 1e-9:
            if self.settings.mode == "continuous" or self._armed:
                act = self.labels[winner]
                act_score = max(s for c, s in self._history if c == winner)
                self._last_action_t = t
                self._disarm(level_db)
        elif self.settings.mode == "per_sound" and self._armed:
            # A sound that wins inside the refractory time is suppressed as a whole: acting on it
            # the moment the time runs out stepped twice on one wobbling whistle.
            self._disarm(level_db)
        return Verdict(self.labels[top], score, self.labels[top] if hit else None, act, act_score)

    def _disarm(self, level_db: float) -> None:
        self._armed = False
        self._peak_db = level_db
        self._quiet_since = None

    def _push(self, detected: int, score: float) -> None:
        self._history.append((detected, score))
        if detected >= 0:
            self._counts[detected] += 1
        if len(self._history) > self.settings.smooth_n:
            old, _ = self._history.popleft()
            if old >= 0:
                self._counts[old] -= 1

    def _winner(self) -> int | None:
        best = max(range(len(self._counts)), key=self._counts.__getitem__)
        return best if self._counts[best] >= self.settings.smooth_k else None
