"""A state dir with a trained model, taught the way a user does: the mock buttons, no MQTT."""

from pathlib import Path

from edge.audio import synth
from edge.config import Config
from edge.service import RunOptions, Service
from edge.tooling.demo import TRAIN_SCENES, hold_button, press_button, wait_training


FAST_TRAIN = {"epochs": 4, "refit_epochs": 0, "bank_ratio": 0.25}
"""A few seconds of training instead of minutes: enough for a model that moves the slider in tests."""


def teach_by_buttons(root: Path, fast: bool = False) -> Path:
    """Hold each class button over its synthetic scene, press Train, wait; returns the state dir."""
    cfg = Config().replace("device", state_dir=str(root / "state")).replace("mqtt", enabled=False)
    if fast:
        cfg = cfg.replace("train", **FAST_TRAIN)
    with Service(cfg, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as service:
        for i, (label, script) in enumerate(TRAIN_SCENES.items()):
            hold_button(service, cfg.class_spec(label).button, synth.render(script, seed=10 + i)[0])
        press_button(service, cfg.buttons.train)
        wait_training(service)
        assert service.engine.classifier is not None, "training by buttons installed no model"
    return root / "state"
