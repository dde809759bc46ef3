"""The per-hop path: samples → front-end frames → windows → classifier → decision policy → slider.

It runs on the loop thread (:meth:`Engine.process`), keeps the hop path's health figures for the
state report, and takes the hand's settings of its last two stages (threshold, slider position).
The engine's mode, hold and classifier are read at every hop, not once a block: a hop can end a
hold, and the hops after it in the same block are then listened to.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from edge.audio.spectrogram import FrameStream, WindowStream, window_level_db
from edge.config import SAMPLE_RATE
from edge.errors import CommandError
from edge.events import DecisionMade, PositionChanged, PredictionMade
from edge.listen.false_move import MoveMemory
from edge.engine.modes import Mode

AMBIENT_SECONDS = 1.0
"""How much audio before a button press counts as the room's ambient level for the gate."""


class HopPipeline:
    def __init__(self, engine: Any):
        self._engine = engine       # typed Any: the engine imports this module
        config = engine.config
        self._config, self._policy, self._slider, self._bus = config, engine.policy, engine.slider, engine.bus
        self.frontend = FrameStream(config.frontend.hop, config.frontend.db_floor)
        self.windows = WindowStream(self.frontend)
        self.hops_per_s = SAMPLE_RATE / config.frontend.hop
        self.ambient: deque[float] = deque(maxlen=max(1, int(AMBIENT_SECONDS * self.hops_per_s)))
        """The levels of the last second outside a hold: a new hold's gate starts from them."""
        self.moves = MoveMemory(self.hops_per_s)
        """The last move and what it sounded like, for "that was wrong" (:class:`HoldControl`)."""
        # Health figures for the state report.
        self.hops = 0
        self.samples_in = 0
        """Stream samples processed so far (stream time = samples_in / 44100)."""
        self.level_dbfs = -float("inf")
        self.classify_us = 0.0
        self.hop_us = 0.0
        self.last_label: str | None = None
        self.last_score = 0.0

    def process(self, samples: np.ndarray) -> None:
        """Feed new audio; runs collection / classification for every completed hop."""
        if samples.shape[0] == 0:
            return
        engine = self._engine
        t0 = time.perf_counter()
        self.samples_in += samples.shape[0]
        power = float(np.dot(samples, samples)) / samples.shape[0]
        self.level_dbfs = 10.0 * np.log10(power) if power > 0 else -float("inf")
        windows, first = self.windows.push(samples)
        if engine.hold is not None:
            engine.hold.add_audio(samples)   # for the console's playback (a copy, capped)
        m = windows.shape[0]
        if m == 0:
            return
        if engine.tap is not None:
            engine.tap.push(windows[:, -1])
        for i in range(m):
            self._hop(windows[i], self.frontend.frame_end_sample(first + i) / SAMPLE_RATE)
        self.hop_us = (time.perf_counter() - t0) * 1e6 / m

    def _hop(self, window: np.ndarray, t: float) -> None:
        engine = self._engine
        self.hops += 1
        level = window_level_db(window)
        if engine.mode == Mode.COLLECTING:
            assert engine.hold is not None
            if not engine.hold.add(window, level, t):
                engine.holds.finish_here()
        else:
            self.ambient.append(level)
        classifier = engine.classifier
        if engine.mode == Mode.LISTENING and classifier is not None:
            self.moves.remember(window, t)
            t1 = time.perf_counter()
            probs = classifier.predict(window)
            self.classify_us = (time.perf_counter() - t1) * 1e6
            verdict = self._policy.update(probs, level, t)
            self.last_label, self.last_score = verdict.label, verdict.score
            self._bus.publish(PredictionMade(t, verdict.label, verdict.score,
                                             dict(zip(classifier.labels, map(float, probs))), level))
            if verdict.act is not None:
                self._act(verdict.act, verdict.act_score, t)

    def _act(self, label: str, score: float, t: float) -> None:
        spec = self._config.class_spec(label)
        self.moves.moved(t, label, self._slider.position)   # before it moves: where "that was wrong" returns
        if spec.action == "step":
            pos = self._slider.step(spec.value)
        elif spec.action == "set":
            pos = self._slider.set(spec.value)
        else:
            return
        self._bus.publish(DecisionMade(t, label, score, pos))
        self._bus.publish(PositionChanged(pos, "decision"))

    def set_position(self, value: float, source: str) -> dict[str, Any]:
        pos = self._slider.set(value)
        self._bus.publish(PositionChanged(pos, source))
        return {"position": pos}

    def set_threshold(self, value: float) -> dict[str, Any]:
        if not 0.0 <= value <= 1.0:
            raise CommandError(f"threshold {value}: must be between 0 and 1")
        self._policy.threshold = float(value)
        return {"threshold": self._policy.threshold}

    def stream_t(self) -> float:
        """Stream time now: the end of the last frame, in seconds."""
        return self.frontend.frame_end_sample() / SAMPLE_RATE
