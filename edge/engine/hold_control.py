"""Collecting on the loop thread: a hold from its press to its stored examples, and "that was wrong".

A hold (:class:`edge.teach.hold.HoldJob`) starts on a class button, ``cmd/collect`` or ``collect`` for N
seconds, and ends on its release, its time limit or shutdown; the mode goes back to where it came
from. "That was wrong" undoes the last move and stores its sound under the background class.
Mode changes and refusals are the engine's (:mod:`edge.engine.modes` is their one table).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from edge.errors import EdgeError, StateError, StoreError
from edge.events import CollectionStarted, ErrorOccurred, ExamplesCollected, FalseMoveMarked, PositionChanged
from edge.listen.false_move import FALSE_MOVE_MAX_AGE_S
from edge.teach.hold import HoldJob
from edge.engine.modes import Mode, ModeMachine
from edge.engine.problems import store_problem

log = logging.getLogger(__name__)


class HoldControl:
    def __init__(self, engine: Any):
        self._engine = engine       # typed Any: the engine imports this module
        self._config, self._store, self._slider, self._bus = engine.config, engine.store, engine.slider, engine.bus
        self._modes: ModeMachine = engine.modes
        self._max_windows = int(self._config.collect.max_hold_s * engine.pipeline.hops_per_s) + 1
        self.job: HoldJob | None = None
        """The hold in progress; replaced whole, so another thread may read it once."""

    def start(self, label: str, source: str, seconds: float | None = None) -> dict[str, Any]:
        engine = self._engine
        engine._check_label(label)
        if problem := store_problem(self._store):
            self._modes.refuse(f"collect {label}", problem)
        job = self.job
        self._modes.allow("collect", f"collect {label}", collecting=job.label if job else None)
        engine.resume_listening = engine.mode == Mode.LISTENING
        self.job = job = HoldJob(self._config, label, source, max_windows=self._max_windows,
                                 ambient_levels=np.array(engine.pipeline.ambient),
                                 deadline=engine.pipeline.stream_t() + seconds if seconds else None)
        self._modes.set(Mode.COLLECTING, label)
        self._bus.publish(CollectionStarted(label, job.session, source))
        return {"label": label, "session": job.session}

    def stop(self, label: str | None) -> dict[str, Any]:
        if self._engine.mode != Mode.COLLECTING or self.job is None:
            raise StateError("not collecting")
        if label is not None and label != self.job.label:
            raise StateError(f"collecting {self.job.label!r}, not {label!r}")
        return self.finish()

    def finish_here(self) -> None:
        """A hold that ends without a caller (time limit, `collect` for N seconds, shutdown): nobody
        waits for the answer, and a full disk must not stop the loop — the failure is already an
        event and a log."""
        try:
            self.finish()
        except StoreError:
            pass

    def finish(self) -> dict[str, Any]:
        engine = self._engine
        assert self.job is not None
        job, self.job = self.job, None
        try:
            done = job.store(self._store)
            counts = engine._refresh_counts()
        except StoreError as exc:
            self._bus.publish(ErrorOccurred("store", str(exc)))
            log.error("collection of %r not stored: %s", job.label, exc)
            self._modes.set(Mode.LISTENING if engine.resume_listening else Mode.IDLE)
            raise
        event = ExamplesCollected(done.label, done.session, done.stored, done.moved, done.skipped, counts)
        self._bus.publish(event)
        self._modes.set(Mode.LISTENING if engine.resume_listening and engine.models.can_listen() else Mode.IDLE)
        return {k: v for k, v in event.to_dict().items() if k != "kind"}

    def press(self, label: str, source: str) -> dict[str, Any]:
        """A class button went down: the background button soon after a move first marks it wrong."""
        window = self._config.listen.false_move_press_s
        moves = self._engine.pipeline.moves
        if (label == self._config.background_label and window > 0
                and moves.recent_move(self._engine.pipeline.stream_t(), window) is not None):
            try:
                self.false_move(source)
            except EdgeError as exc:
                log.warning("could not mark the last move wrong: %s", exc)
        return self.start(label, source)

    def false_move(self, source: str) -> dict[str, Any]:
        """"That was wrong": undo the last move, keep its sound as background for the next training."""
        engine, moves = self._engine, self._engine.pipeline.moves
        move = moves.recent_move(engine.pipeline.stream_t())
        if move is None:
            self._modes.refuse("false move", f"no move in the last {FALSE_MOVE_MAX_AGE_S:.0f} s to mark wrong")
        background = self._config.background_label
        if background is None:
            self._modes.refuse("false move", "no class has background = true to store the sound under")
        moves.take()
        session = f"{time.strftime('%Y%m%dT%H%M%S')}-false-move"
        try:
            (stored,) = self._store.add_groups([(background, move.sound())], f"false_move:{source}", session)
        except StoreError as exc:
            self._bus.publish(ErrorOccurred("store", str(exc)))
            raise
        pos = self._slider.set(move.before)
        self._bus.publish(PositionChanged(pos, "false_move"))
        self._bus.publish(FalseMoveMarked(move.label, move.t, stored, pos, session, source))
        self._bus.publish(ExamplesCollected(background, session, stored, 0, 0, engine._refresh_counts()))
        log.info("move %r at t=%.2f s marked wrong (%s): undone, %d windows stored as %r (session %s); "
                 "train again to learn from them", move.label, move.t, source, stored, background, session)
        return {"label": move.label, "t": round(move.t, 3), "stored": stored, "position": pos,
                "session": session}
