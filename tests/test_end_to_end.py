"""End to end on gpiozero's MockFactory: buttons collect while WAVs play, Train, then the servo obeys.

Real parts throughout: WAV files on disk, the BROWSER_FFT front end, the SQLite store, the numpy
trainer, our int8 TFLite writer, the real TFLite runtime, gpiozero Button/Servo on mock pins.
"""

import threading

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.wavfile import read_wav, write_wav
from edge.config import Config
from edge.tooling.demo import TRAIN_SCENES, hold_button, press_button, wait_training
from edge.service import RunOptions, Service

TEST_SCENE = "gap:1, snap, gap:1.2, snap, gap:1.2, whistle:0.5, gap:1.5, babble:2, gap:1.2, whistle:0.5, gap:1"
# snap = left (−0.1), whistle = right (+0.1): 5.0 → 4.9 → 4.8 → 4.9 → (talk: nothing) → 5.0
EXPECTED = [4.9, 4.8, 4.9, 5.0]


def servo_duty(position: float) -> float:
    """Default pulse widths 1–2 ms at 50 Hz: position 0..10 → duty 0.05..0.10."""
    return (1.0 + position / 10.0) / 20.0


@pytest.fixture
def config(tmp_path):
    cfg = Config().replace("device", state_dir=str(tmp_path / "state")).replace("mqtt", enabled=False)
    # the demo's synthetic room (as `edge-slider demo`): no gain jitter, see cmd_demo
    return cfg.replace("slider", detach_after_s=0.0).replace("train", **synth.SYNTHETIC_ROOM_TRAINING)


@pytest.fixture
def wavs(tmp_path):
    out = {}
    for i, (label, script) in enumerate(TRAIN_SCENES.items()):
        path = tmp_path / f"{label}.wav"
        write_wav(path, synth.render(script, seed=10 + i)[0])
        out[label] = path
    test = tmp_path / "test.wav"
    write_wav(test, synth.render(TEST_SCENE, seed=77, gain_db=-6.0)[0])
    out["test"] = test
    return out


def teach(service, wavs):
    for label in ("left", "right", "noise"):
        hold_button(service, service.config.class_spec(label).button, read_wav(wavs[label]))
    counts = service.store.counts()
    assert all(counts[label] >= 20 for label in ("left", "right", "noise")), counts
    press_button(service, service.config.buttons.train)
    assert service.engine.mode == "training"
    wait_training(service)
    assert service.engine.classifier is not None, "training produced no model"
    assert service.engine.mode == "listening"


def distinct_duties(pin) -> list[float]:
    duties = []
    for s in pin.states:
        if s.state and (not duties or abs(duties[-1] - s.state) > 1e-9):
            duties.append(round(float(s.state), 6))
    return duties


def test_buttons_train_and_servo_follows_the_sounds(config, wavs):
    with Service(config, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as service:
        teach(service, wavs)
        servo_pin = service.pin_factory.pin(config.slider.pin)
        before = len(servo_pin.states)
        from edge.tooling.demo import feed
        feed(service, read_wav(wavs["test"]))
        duties = [d for d in distinct_duties(servo_pin)[-len(EXPECTED):]]
        assert len(servo_pin.states) > before
        assert duties == pytest.approx([servo_duty(p) for p in EXPECTED], abs=1e-6)
        assert service.slider.position == pytest.approx(5.0)


def test_daemon_loop_listens_to_a_wav(config, wavs):
    """The real run loop (ring, source thread, engine) with a WAV source, after teaching."""
    with Service(config, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as service:
        teach(service, wavs)
    options = RunOptions(simulate=True, mqtt=False, wav=str(wavs["test"]), realtime=False, loop=False)
    with Service(config, options) as service:
        assert service.engine.classifier is not None  # the model survived the restart
        decisions = []
        service.bus.subscribe(lambda e: decisions.append(e) if type(e).__name__ == "DecisionMade" else None)
        t = threading.Thread(target=service.run)
        t.start()
        t.join(60)
        assert not t.is_alive()
        assert [d.label for d in decisions] == ["left", "left", "right", "right"]
        assert service.ring.overruns == 0
        duties = distinct_duties(service.pin_factory.pin(config.slider.pin))
        assert duties[-4:] == pytest.approx([servo_duty(p) for p in EXPECTED], abs=1e-6)
