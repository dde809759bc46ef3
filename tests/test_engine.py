"""The engine's modes and refusals, with in-memory fakes (the daemon tests use the real parts)."""

import threading

import numpy as np
import pytest

from edge.audio import synth
from edge.config import Config
from edge.engine.core import Engine
from edge.errors import CommandError, StateError, StoreError
from edge.events import ExamplesCollected, ExamplesMoved, Refused
from tests.fakes import FakeClassifier, FakeRegistry, FakeSlider, FakeStore


def make_engine(classifier=None, trainer=None, **cfg):
    config = Config()
    for section, values in cfg.items():
        config = config.replace(section, **values)
    events = []
    engine = Engine(config, store=FakeStore(), registry=FakeRegistry(classifier), slider=FakeSlider(),
                    classifier=classifier, trainer=trainer)
    engine.bus.subscribe(events.append)
    return engine, events


def feed(engine, samples):
    for i in range(0, len(samples), 1024):
        engine.process(samples[i:i + 1024])
        engine.poll()


def test_collect_hold_stores_sound_and_quiet_as_background():
    engine, events = make_engine()
    feed(engine, synth.render("gap:1")[0])
    engine.collect_start("left", "test")
    assert engine.mode == "collecting"
    feed(engine, synth.render(", ".join(["gap:0.4", "snap"] * 5) + ", gap:0.4", seed=2)[0])
    result = engine.collect_stop("left")
    assert engine.mode == "idle"
    counts = engine.store.counts()
    assert 0 < counts["left"] < counts["noise"]
    done = [e for e in events if isinstance(e, ExamplesCollected)]
    assert done and done[0].stored == counts["left"] and result["background"] == counts["noise"]


def test_refusals_are_defined_and_reported():
    engine, events = make_engine()
    with pytest.raises(CommandError, match="unknown label 'up'"):
        engine.collect_start("up")
    with pytest.raises(StateError, match="too few examples"):
        engine.train()
    with pytest.raises(StateError, match="no model installed"):
        engine.set_listening(True)
    engine.collect_start("left")
    with pytest.raises(StateError, match="already collecting 'left'"):
        engine.collect_start("right")
    with pytest.raises(StateError, match="cannot train while collecting"):
        engine.train()
    engine.collect_stop("left")
    with pytest.raises(StateError, match="not collecting"):
        engine.collect_stop("left")
    assert sum(isinstance(e, Refused) for e in events) == 4


def test_collect_refused_while_training():
    release = threading.Event()

    def trainer(progress, should_stop):
        release.wait(5)
        raise StoreError("stopped")

    engine, _ = make_engine(trainer=trainer, train={"min_examples": 2})
    engine.store.add_many("left", np.zeros((3, 3, 232), np.float32), "t", "s1")
    engine.store.add_many("right", np.zeros((3, 3, 232), np.float32), "t", "s1")
    engine.store.add_many("noise", np.zeros((3, 3, 232), np.float32), "t", "s1")
    engine.train()
    assert engine.mode == "training"
    with pytest.raises(StateError, match="training in progress"):
        engine.collect_start("left")
    release.set()
    for _ in range(200):
        engine.poll()
        if engine.mode != "training":
            break
        threading.Event().wait(0.01)
    assert engine.mode == "idle"  # the trainer failed: old (no) model kept, back to idle


def test_listening_moves_slider_once_per_sound():
    engine, _ = make_engine(classifier=FakeClassifier())
    engine.set_listening(True)
    feed(engine, synth.render("gap:0.5, whistle:0.6, gap:0.8, whistle:0.6, gap:0.5", seed=3)[0])
    assert engine.slider.moves == [5.1, 5.2]


def test_store_failure_refuses_collection_without_crash():
    engine, _ = make_engine()
    engine.store.fail = StoreError("disk full")
    engine.collect_start("left")
    feed(engine, synth.render("snap, gap:0.3")[0])
    with pytest.raises(StoreError):
        engine.collect_stop("left")
    assert engine.mode == "idle"


def test_calls_from_other_threads_run_on_the_loop_thread():
    engine, _ = make_engine(classifier=FakeClassifier())
    seen = {}

    def remote():
        seen["result"] = engine.set_position(7.5)

    t = threading.Thread(target=remote)
    t.start()
    for _ in range(100):
        engine.poll()
        if "result" in seen:
            break
        threading.Event().wait(0.01)
    t.join(1)
    assert seen["result"] == {"position": 7.5} and engine.slider.position == 7.5


def test_collect_for_seconds_stops_by_itself():
    engine, _ = make_engine()
    engine.collect_for("noise", 0.5)
    feed(engine, synth.render("gap:1")[0])
    assert engine.mode == "idle"
    assert 15 <= engine.store.counts()["noise"] <= 25


def test_a_timed_collection_that_cannot_be_stored_does_not_stop_the_audio_loop():
    """`collect {"seconds": N}` ends on the audio path; a full disk there was raised out of
    process() and ended the daemon (seen in the disk-full test of the real daemon)."""
    engine, events = make_engine(classifier=FakeClassifier(), listen={"autostart": True})
    engine._listen(True)
    engine.store.fail = StoreError("disk full")
    engine.collect_for("left", 0.3)
    feed(engine, synth.render("snap, gap:0.8")[0])      # would raise here
    assert engine.mode == "listening"
    assert any(type(e).__name__ == "ErrorOccurred" and e.where == "store" for e in events)
    hops = engine.hops
    feed(engine, synth.render("gap:0.5")[0])
    assert engine.hops > hops


def test_that_was_wrong_undoes_the_move_and_keeps_its_sound_as_background():
    from edge.events import FalseMoveMarked
    engine, events = make_engine(FakeClassifier())
    engine.set_listening(True)
    feed(engine, synth.render("gap:1.5, snap, gap:0.6", seed=3)[0])
    assert engine.slider.position == pytest.approx(4.9)
    result = engine.false_move("test")
    assert engine.slider.position == pytest.approx(5.0)
    rows = [r for r in engine.store.rows if r[2] == "false_move:test"]
    # the windows of the move: ~1 s before the decision to 0.3 s after (≈ 56 hops), all under noise
    assert 40 <= len(rows) <= 60 and {r[0] for r in rows} == {"noise"} and result["stored"] == len(rows)
    assert any(r[1].max() > -50 for r in rows), "the snap itself must be among the stored windows"
    marked = [e for e in events if isinstance(e, FalseMoveMarked)]
    assert len(marked) == 1 and marked[0].label == "left"
    with pytest.raises(StateError, match="no move"):
        engine.false_move("test")     # one move, one mark


def test_pressing_the_background_button_soon_after_a_move_marks_it_wrong():
    engine, _ = make_engine(FakeClassifier())
    engine.set_listening(True)
    feed(engine, synth.render("gap:0.5, snap, gap:0.5", seed=4)[0])
    assert engine.slider.position == pytest.approx(4.9)
    engine.call(engine._press_collect, "noise", "button")
    assert engine.slider.position == pytest.approx(5.0) and engine.mode == "collecting"
    engine.collect_stop("noise")
    # later than listen.false_move_press_s: a plain noise hold, the move stays
    feed(engine, synth.render("gap:0.5, snap, gap:3.5", seed=5)[0])
    moved = engine.slider.position
    engine.call(engine._press_collect, "noise", "button")
    assert engine.slider.position == moved and moved != pytest.approx(5.0)


def test_a_call_that_timed_out_never_runs_later():
    """A remote command that gave up waiting for the loop (reply: "did not answer") must not run
    once the loop comes back: that would obey an order its sender was told had failed."""
    engine, _ = make_engine(classifier=FakeClassifier())
    errors = []

    def remote():
        try:
            engine.call(engine._position, 9.0, "mqtt", timeout=0.1)
        except StateError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=remote)
    t.start()
    t.join(5)                      # the loop is "stuck": nobody polls while the caller waits
    assert errors and "did not answer" in errors[0]
    engine.poll()                  # the loop is back
    assert engine.slider.position != 9.0, "a timed-out call ran after its caller had given up"


def test_a_timed_out_call_already_running_says_so():
    engine, _ = make_engine(classifier=FakeClassifier())
    started, release, errors = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        release.wait(5)

    def remote():
        try:
            engine.call(slow, timeout=0.2)
        except StateError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=remote)
    t.start()
    poller = threading.Thread(target=lambda: (engine.adopt_thread(), engine.poll()))
    poller.start()
    assert started.wait(5)
    t.join(5)
    release.set()
    poller.join(5)
    assert errors and "still running" in errors[0], errors


class _ScriptedClassifier(FakeClassifier):
    """Returns the given probabilities hop after hop (then the last one forever)."""

    def __init__(self, script):
        self.script = list(script)

    def predict(self, window):
        return np.array(self.script.pop(0) if len(self.script) > 1 else self.script[0], dtype=np.float32)


def test_decision_event_carries_the_detections_score():
    """Measured: a decision event said 0.617 under a 0.75 threshold (the current hop's score)."""
    noise, strong, weak = [0.02, 0.02, 0.96], [0.96, 0.02, 0.02], [0.617, 0.2, 0.183]
    clf = _ScriptedClassifier([noise] * 5 + [strong, strong, weak, weak] + [noise] * 500)
    engine, events = make_engine(classifier=clf, listen={"mode": "continuous", "refractory_s": 0.0})
    engine.set_listening(True)
    feed(engine, synth.render("whistle:0.5, gap:1.0", seed=3)[0])
    from edge.events import DecisionMade
    decisions = [e for e in events if isinstance(e, DecisionMade)]
    assert len(decisions) >= 2
    assert all(d.score >= 0.75 for d in decisions), [d.score for d in decisions]


def test_a_model_brings_its_calibrated_thresholds_and_a_manual_threshold_overrides_them():
    class Calibrated(FakeClassifier):
        metadata = {"decision": {"thresholds": {"left": 0.97, "right": 0.6}}}

    engine, _ = make_engine(Calibrated())
    assert engine.policy.thresholds == {"left": 0.97, "right": 0.6}
    assert engine.snapshot()["thresholds"] == {"left": 0.97, "right": 0.6}
    engine.set_threshold(0.8)
    assert engine.policy.thresholds == {"left": 0.8, "right": 0.8}
    engine2, _ = make_engine(Calibrated(), listen={"calibrated": False})
    assert engine2.policy.thresholds == {"left": 0.75, "right": 0.75}


def test_the_state_report_never_touches_the_store_from_another_thread():
    """snapshot() runs on the MQTT publisher thread: it must read the counts the loop published, not
    the store (whose SQLite connection the loop and the trainer use)."""
    engine, _ = make_engine()
    touched = []
    real_counts = engine.store.counts

    def counts():
        touched.append(threading.current_thread().name)
        return real_counts()

    engine.store.counts = counts
    feed(engine, synth.render("gap:1")[0])
    engine.collect_start("left", "test")
    feed(engine, synth.render(", ".join(["gap:0.4", "snap"] * 5) + ", gap:0.4", seed=2)[0])
    engine.collect_stop("left")
    reports = []
    reader = threading.Thread(target=lambda: reports.append(engine.snapshot()), name="publisher")
    reader.start()
    reader.join()
    assert "publisher" not in touched, "the state report read the store from the publisher thread"
    assert reports[0]["labels"]["left"] == engine.store.counts()["left"] > 0, "the report lost the new counts"
    engine.store.rows.clear()                     # another process (the CLI) empties the store
    engine._counts_t -= 60                        # ... and the loop's next refresh is due
    engine.poll()
    assert engine.snapshot()["labels"]["left"] == 0


@pytest.mark.parametrize("mode", ["collecting", "training"])
def test_every_request_the_mode_table_refuses_is_refused_with_its_reason(mode):
    """edge.engine.modes.REFUSALS is the one table: drive the engine into each busy mode, send every request
    and compare with the table — a check the engine skipped, or a reason typed elsewhere, fails here."""
    from edge.engine.modes import REFUSALS, Mode, refusal
    release = threading.Event()

    def trainer(progress, should_stop):
        release.wait(5)
        raise StoreError("stopped")

    engine, events = make_engine(classifier=FakeClassifier(), trainer=trainer, train={"min_examples": 2},
                                 listen={"autostart": False})
    for label in ("left", "right", "noise"):
        engine.store.add_many(label, np.zeros((3, 3, 232), np.float32), "t", "s1")
    feed(engine, synth.render("gap:0.5")[0])
    engine.collect_start("right") if mode == "collecting" else engine.train()
    assert engine.mode == mode
    requests = {"collect": lambda: engine.collect_start("left"), "train": engine.train,
                "listen on": lambda: engine.set_listening(True),
                "delete examples": lambda: engine.delete_examples(label="left"),
                "model rollback": engine.rollback_model}
    assert set(requests) == set(REFUSALS), "a request in the table has no check here"
    for name, send in requests.items():
        reason = refusal(name, Mode(mode), collecting="right")
        if reason is None:
            continue
        with pytest.raises(StateError) as err:
            send()
        assert str(err.value) == reason, name
        assert events[-1] == Refused(events[-1].request, reason)
    assert engine.set_listening(False) == {"listening": False}   # never refused: cancels the return
    release.set()
    if mode == "collecting":
        engine.collect_stop("right")
    for _ in range(200):
        engine.poll()
        if engine.mode == "idle":
            break
        threading.Event().wait(0.01)
    assert engine.mode == "idle"


def test_moving_a_session_relabels_its_sound_and_keeps_its_background():
    engine, events = make_engine()
    engine.store.add_many("left", np.zeros((4, 3, 232), np.float32), "button", "s1")
    engine.store.add_many("noise", np.zeros((3, 3, 232), np.float32), "button", "s1")
    engine.store.add_many("noise", np.zeros((2, 3, 232), np.float32), "button", "quiet")
    result = engine.move_session("s1", "right")
    assert result["moved"] == 4 and engine.store.counts() == {"right": 4, "noise": 5}
    assert events[-1] == ExamplesMoved(4, "s1", "right", result["counts"])
    # a background-only hold moves whole: it was the sound, taught on the wrong button
    assert engine.move_session("quiet", "left")["moved"] == 2
    with pytest.raises(CommandError, match="no session 'nope'"):
        engine.move_session("nope", "left")
    with pytest.raises(CommandError, match="unknown label"):
        engine.move_session("s1", "up")
