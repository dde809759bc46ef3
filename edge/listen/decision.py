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

**Onset gate** (``per_sound``, ``onset_db`` > 0): a sound acts only if the window that would act
(its loudest of the last ``ONSET_PEAK_S``) is ``onset_db`` louder than the median level of the stretch
``ONSET_PRE_S`` before it, or if the level has been steady for the last ``ONSET_PRE_S[0]`` (hop to
hop by at most ``ONSET_STEADY_DB``, median); otherwise the sound is suppressed as a whole, like one
that wins in the refractory time. A taught sound starts out of something quieter and is mostly
decided in its first 0.1–0.2 s; a false move on talk is mostly a syllable in the middle of an
utterance, whose half second before was as loud and whose level jumps from syllable to syllable.
A long whistle or a ringing bell the model recognises only late is steady (or decays smoothly).
Measured (room bench, 6 development seeds, medians, household talk, TV and effects): false moves
per hour 70 → 38 (knock/chime) and 50 → 38 (snap/whistle), recall unchanged; without the
steadiness clause 70 → 31 and 50 → 28, but 4 points fewer whistles on average. The training's
calibration leaves the gate out (see :mod:`edge.model.calibrate`), so its thresholds and estimates
are as without it.

The score a decision carries (``Verdict.act_score``) is the best probability among the k-of-n
detections that made it, never the current hop's (which, in ``continuous`` mode or at the end of
the refractory time, may be under the threshold or of another class).

Time is the stream time of the window's end, so replays decide exactly as live audio does.

Classes are matched to the model's outputs **by name** (:meth:`DecisionPolicy.bind`), never by
position: a config with a class the model lacks, or a model with an output the config lacks, once
moved the servo as ``clap`` on the model's ``noise`` output. An output whose label is not a
configured class takes part in the argmax (so it can win a hop) but never acts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from edge.config import ClassSpec, ListenSettings


ONSET_PRE_S = (0.6, 0.2)
"""Onset gate: the stretch before a candidate hop whose median level it must rise above, as (from,
to) seconds back."""
ONSET_PEAK_S = 0.15
"""Onset gate: the candidate's level is the loudest window of this last stretch (its own hop included)."""
ONSET_STEADY_DB = 0.7
"""Onset gate: a level whose median hop-to-hop change over the last ``ONSET_PRE_S[0]`` is at most this
is one steady sound (a whistle, a bell's decay) and passes; talk measured 1–3 dB, whistles 0.4–0.7."""

REARM_MAX_S = 1.0
"""per_sound: re-arm after this long without detections even if the level never fell (steady loud
background, e.g. music louder than the sound that acted)."""


def onset_rise_db(ages_s: np.ndarray, levels_db: np.ndarray) -> float:
    """How many dB the newest sound rises above what came before it: the loudest level of age ≤
    ``ONSET_PEAK_S`` minus the median level of age in ``ONSET_PRE_S``; +inf when nothing that old is
    known (the start of a stream). ``ages_s`` = seconds before the candidate hop."""
    older, newer = ONSET_PRE_S
    pre = levels_db[(ages_s >= newer - 1e-9) & (ages_s <= older + 1e-9)]
    if pre.size == 0:
        return float("inf")
    peak = levels_db[ages_s < ONSET_PEAK_S + 1e-9]
    return float(np.max(peak) - np.median(pre))


def onset_passes(ages_s: np.ndarray, levels_db: np.ndarray, onset_db: float) -> bool:
    """The onset gate on the last ``ONSET_PRE_S[0]`` seconds of levels (oldest first): a rise of
    ``onset_db`` over the stretch before, or one steady sound all along."""
    if onset_rise_db(ages_s, levels_db) >= onset_db:
        return True
    return levels_db.size > 1 and float(np.median(np.abs(np.diff(levels_db)))) <= ONSET_STEADY_DB


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


@dataclass(frozen=True)
class Binding:
    """How a model's outputs meet the configured classes."""

    missing: tuple[str, ...]
    """Configured classes the model has no output for (never detected)."""
    extra: tuple[str, ...]
    """Model outputs that are not configured classes (never act)."""
    acting: tuple[str, ...]
    """Configured acting classes the model can detect."""


class DecisionPolicy:
    def __init__(self, settings: ListenSettings, classes: tuple[ClassSpec, ...]):
        self.settings = settings
        self._classes = tuple(classes)
        self.labels = tuple(c.name for c in classes)
        self._acting = np.array([c.action != "none" and not c.background for c in classes], dtype=bool)
        self._take: np.ndarray | None = None
        """Model output index per policy class (None: the model's order is the config's)."""
        self._padded = np.zeros(0, np.float32)
        self._threshold = settings.threshold
        self._per_class: dict[str, float] = {}
        self._thresholds = np.full(len(self.labels), settings.threshold, dtype=np.float64)
        self._history: deque[tuple[int, float]] = deque()
        """(class detected or -1, its score) for the last n hops."""
        self._counts = [0] * len(self.labels)
        """Detections per class over the last n hops (kept incrementally: this runs every hop)."""
        self._last_action_t = -1e9
        self._armed = True
        self._peak_db = -np.inf
        self._quiet_since: float | None = None
        self._gate = settings.mode == "per_sound" and settings.onset_db > 0
        """The onset gate is on (settings are fixed for a policy's life: decided once, not per hop)."""
        self._levels: deque[tuple[float, float]] = deque()
        """(t, level) of the last ``ONSET_PRE_S[0]`` seconds, for the onset gate."""

    @property
    def threshold(self) -> float:
        """The one threshold set by config or command (per-class ones may differ: :attr:`thresholds`)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        # NOTE: a threshold the user sets by hand applies to every class, over the calibrated ones.
        self._threshold = float(value)
        self._per_class = {}
        self._thresholds[:] = self._threshold

    @property
    def thresholds(self) -> dict[str, float]:
        return {lb: float(t) for lb, t, a in zip(self.labels, self._thresholds, self._acting) if a}

    def set_thresholds(self, per_class: dict[str, float] | None) -> None:
        """Per-class thresholds (a model's calibration); classes not named keep :attr:`threshold`."""
        self._per_class = dict(per_class or {})
        self._thresholds = np.full(len(self.labels), self._threshold, dtype=np.float64)
        for i, lb in enumerate(self.labels):
            if lb in self._per_class:
                self._thresholds[i] = float(self._per_class[lb])

    def bind(self, model_labels: tuple[str, ...] | list[str]) -> Binding:
        """Match the model's outputs to the configured classes by name (once per model, so the
        per-hop cost is one gather, and nothing when the orders agree)."""
        config = tuple(c.name for c in self._classes)
        model = tuple(model_labels)
        extra = tuple(lb for lb in model if lb not in config)
        self.labels = config + extra
        acting = [c.action != "none" and not c.background for c in self._classes]
        self._acting = np.array(acting + [False] * len(extra), dtype=bool)
        where = {lb: i for i, lb in enumerate(model)}
        take = [where.get(lb, len(model)) for lb in self.labels]    # len(model) → the padded zero
        self._take = None if self.labels == model else np.array(take, dtype=np.intp)
        self._padded = np.zeros(len(model) + 1, np.float32)
        self.set_thresholds(self._per_class)     # one per (now possibly longer) label list
        self.reset()
        missing = tuple(lb for lb in config if lb not in where)
        return Binding(missing, extra, tuple(c.name for c, a in zip(self._classes, acting) if a and c.name in where))

    def reset(self) -> None:
        self._history.clear()
        self._counts = [0] * len(self.labels)
        self._armed = True
        self._last_action_t = -1e9
        self._peak_db = -np.inf
        self._quiet_since = None
        self._levels.clear()

    def update(self, probs: np.ndarray, level_db: float, t: float) -> Verdict:
        """``probs`` in the order of the bound model's outputs (or of the config, unbound)."""
        if self._take is not None:
            self._padded[:-1] = probs
            probs = self._padded[self._take]
        top = int(np.argmax(probs))
        score = float(probs[top])
        hit = (self._acting[top] and score >= self._thresholds[top] and level_db >= self.settings.min_level_db)
        self._push(top if hit else -1, score)
        if self._gate:
            self._levels.append((t, level_db))
            while self._levels[0][0] < t - ONSET_PRE_S[0] - 1e-6:
                self._levels.popleft()
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
            if self._gate and self._armed and not self._onset_ok(t):
                # Not the start of a sound (the half second before was as loud, and not one steady
                # sound): suppressed as a whole.
                self._disarm(level_db)
            elif self.settings.mode == "continuous" or self._armed:
                act = self.labels[winner]
                act_score = max(s for c, s in self._history if c == winner)
                self._last_action_t = t
                self._disarm(level_db)
        elif self.settings.mode == "per_sound" and self._armed:
            # A sound that wins inside the refractory time is suppressed as a whole: acting on it
            # the moment the time runs out stepped twice on one wobbling whistle.
            self._disarm(level_db)
        return Verdict(self.labels[top], score, self.labels[top] if hit else None, act, act_score)

    def _onset_ok(self, t: float) -> bool:
        ts, lv = zip(*self._levels)
        return onset_passes(t - np.array(ts), np.array(lv), self.settings.onset_db)

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
