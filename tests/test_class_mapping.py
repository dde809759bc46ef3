"""Config and model disagree on the classes: outputs are matched to classes by NAME, never by position.

The model is the demo's (labels left, right, noise). Configs with fewer, more or other classes must
neither crash (2 classes: IndexError) nor let an output act as another class (4 classes: the model's
``noise`` output moved the servo as ``clap``).
"""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from edge.audio import synth
from edge.config import ClassSpec, Config
from edge.device.slider import NullOutput, Slider
from edge.engine.core import Engine
from edge.errors import StateError
from edge.events import DecisionMade, ErrorOccurred
from edge.model.registry import ModelRegistry
from edge.teach.store import ExampleStore

LEFT, RIGHT = ClassSpec("left", "step", -0.1, 17), ClassSpec("right", "step", 0.1, 27)
CLAP, NOISE = ClassSpec("clap", "step", 0.5, 5), ClassSpec("noise", "none", 0.0, 22, background=True)


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo") / "state"
    subprocess.run([sys.executable, "-m", "edge", "--state-dir", str(state), "demo"], check=True,
                   capture_output=True, timeout=180)
    return state


def _engine(state, classes, tmp_path):
    cfg = dataclasses.replace(Config().replace("device", state_dir=str(tmp_path)), classes=classes)
    reg = ModelRegistry(state / "models")
    clf = reg.load_current(expect_hop=cfg.frontend.hop)
    assert clf.labels == ("left", "right", "noise")
    engine = Engine(cfg, store=ExampleStore(tmp_path / "ex.sqlite"), registry=reg, slider=Slider(NullOutput(), cfg.slider, None), classifier=clf)
    seen = []
    engine.bus.subscribe(seen.append)
    return engine, seen


def _listen(engine, script, seed=5):
    samples, _ = synth.render(script, seed=seed)
    engine._listen(True)
    for i in range(0, samples.shape[0], 1024):
        engine.process(samples[i:i + 1024])


def test_fewer_classes_than_outputs_listens_with_what_matches(demo_models, tmp_path):
    """2 configured classes, a 3-label model: used to die with IndexError on the first hop."""
    engine, seen = _engine(demo_models, (LEFT, NOISE), tmp_path)
    engine.start_reporting()
    _listen(engine, "gap:1, snap, gap:1, whistle:0.6, gap:1, snap, gap:1, babble:2, gap:1")
    labels = [e.label for e in seen if isinstance(e, DecisionMade)]
    assert labels and set(labels) == {"left"}, labels          # whistles (the model's 'right') never act
    errors = [e for e in seen if isinstance(e, ErrorOccurred)]
    assert len(errors) == 1 and errors[0].where == "model" and "'right'" in errors[0].message, errors
    assert "right" in engine.snapshot()["problems"]["classes"]


def test_a_configured_class_the_model_lacks_never_gets_another_classes_output(demo_models, tmp_path):
    """4 configured classes (clap added), the same model: its noise output moved the servo as clap."""
    engine, seen = _engine(demo_models, (LEFT, RIGHT, CLAP, NOISE), tmp_path)
    engine.start_reporting()
    _listen(engine, "gap:1, babble:3, gap:0.5, noise:2, gap:0.5, babble:3, gap:1, snap, gap:1, whistle:0.6, gap:1")
    labels = [e.label for e in seen if isinstance(e, DecisionMade)]
    assert "clap" not in labels, labels
    assert {"left", "right"} <= set(labels), labels
    errors = [e for e in seen if isinstance(e, ErrorOccurred)]
    assert len(errors) == 1 and "'clap'" in errors[0].message and "\n" not in errors[0].message, errors


def test_no_acting_class_in_the_model_refuses_listening(demo_models, tmp_path):
    engine, seen = _engine(demo_models, (CLAP, NOISE), tmp_path)
    with pytest.raises(StateError, match="clap"):
        engine._listen(True)
    assert engine.mode == "idle"


def test_matching_classes_in_another_order_map_by_name(demo_models, tmp_path):
    engine, seen = _engine(demo_models, (NOISE, RIGHT, LEFT), tmp_path)
    engine.start_reporting()
    _listen(engine, "gap:1, snap, gap:1.2, whistle:0.6, gap:1.2")
    labels = [e.label for e in seen if isinstance(e, DecisionMade)]
    assert labels == ["left", "right"], labels
    assert not [e for e in seen if isinstance(e, ErrorOccurred)]
