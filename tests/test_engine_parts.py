"""The pieces the engine delegates to: the move memory, the problem reporter, the training job."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edge.errors import ModelError
from edge.events import ErrorOccurred, EventBus, TrainingProgress
from edge.listen.false_move import FALSE_MOVE_AFTER_S, FALSE_MOVE_BEFORE_S, MoveMemory
from edge.engine.problems import Problems
from edge.teach.training_job import TrainingJob

HOPS_PER_S = 44100 / 1024


def _window(i: float) -> np.ndarray:
    return np.full((3, 232), float(i), np.float32)


def test_a_move_keeps_one_second_before_and_its_tail_after_and_is_taken_once():
    mem = MoveMemory(HOPS_PER_S)
    dt = 1 / HOPS_PER_S
    ts = [i * dt for i in range(200)]
    buf = np.zeros((3, 232), np.float32)
    for i, t in enumerate(ts[:100]):
        buf[:] = i                                  # the caller reuses its buffer: the memory must copy
        mem.remember(buf, t)
    t_move = ts[99]
    mem.moved(t_move, "left", before=4.0)
    for i, t in enumerate(ts[100:], start=100):
        buf[:] = i
        mem.remember(buf, t)
    move = mem.recent_move(now=ts[-1])
    assert move is not None and move.label == "left" and move.before == 4.0
    kept = move.sound()[:, 0, 0]
    assert kept.shape[0] == len(set(kept))          # distinct windows: copies, not one reused buffer
    times = np.array(ts)[kept.astype(int)]
    assert times.min() >= t_move - FALSE_MOVE_BEFORE_S - 1e-9 and times.max() <= t_move + FALSE_MOVE_AFTER_S + 1e-9
    assert times.min() <= t_move - FALSE_MOVE_BEFORE_S + 2 * dt and times.max() >= t_move + FALSE_MOVE_AFTER_S - 2 * dt
    assert mem.recent_move(now=t_move + 31) is None           # too old to mark
    assert mem.recent_move(now=ts[-1], within_s=0.1) is None   # outside the button's window
    assert mem.take() is move and mem.take() is None and mem.recent_move(now=ts[-1]) is None


def test_problems_are_said_once_and_held_back_until_reporting_starts():
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    p = Problems(bus)
    p.report("model", "model", "model damaged")
    p.report("model", "model", "model damaged")
    assert p.active == {"model": "model damaged"} and seen == []
    p.start_reporting()
    assert [(e.where, e.message) for e in seen if isinstance(e, ErrorOccurred)] == [("model", "model damaged")]
    p.report("store", "store", "disk full")
    p.report("store", "store", "disk full")
    assert len(seen) == 2
    p.clear("model")
    assert p.active == {"store": "disk full"}


@pytest.mark.parametrize("fails", [False, True])
def test_training_job_delivers_once_from_its_thread_and_reports_progress(fails):
    bus = EventBus()
    progress: list = []
    bus.subscribe(lambda e: progress.append(e) if isinstance(e, TrainingProgress) else None)
    got: list = []
    done = threading.Event()

    def trainer(progress, should_stop):
        progress(1, 2, 0.5, 0.6)
        progress(2, 2, 0.4, 0.7, 0.45, 0.65)
        if fails:
            raise ModelError("too few examples")
        return "outcome"

    def deliver(outcome, error, seconds):
        got.append((outcome, error, seconds, threading.current_thread().name))
        done.set()

    job = TrainingJob(trainer, bus, deliver)
    job.start()
    assert done.wait(5)
    job.stop()
    assert len(got) == 1
    outcome, error, seconds, thread = got[0]
    assert thread == "train" and seconds >= 0
    assert (outcome, str(error)) == ((None, "too few examples") if fails else ("outcome", "None"))
    assert [(e.epoch, e.accuracy) for e in progress] == [(1, 0.6), (2, 0.7)]


def test_stopping_a_training_job_tells_the_trainer():
    started = threading.Event()
    stopped: list = []

    def trainer(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        stopped.append(True)
        return None

    job = TrainingJob(trainer, EventBus(), lambda *a: None)
    job.start()
    assert started.wait(5)
    job.stop(timeout=5)
    assert stopped == [True] and not job.running
