"""Store → trainer → int8 writer → registry: what the Train button, CLI and MQTT all run."""

from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass

import numpy as np

from edge import __version__
from edge.config import FFT_SIZE, NUM_BINS, NUM_FRAMES, SAMPLE_RATE, Config
from edge.model import network as net
from edge.model.classifier import FORMAT, FORMAT_VERSION
from edge.model.quantize import quantize, simulate
from edge.model.train import PRESETS, Recipe, TrainResult, confusion_report, train

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    version: int
    result: TrainResult
    model_bytes: int
    seconds: float
    int8_agreement: float

    @property
    def val_accuracy(self) -> float | None:
        return self.result.val_accuracy


def recipe_from_config(config: Config, preset: str | None = None, **overrides) -> Recipe:
    t = config.train
    base = Recipe(epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                  validation_split=t.validation_split, seed=t.seed, min_examples=t.min_examples,
                  gain_jitter_db=t.gain_jitter_db)
    if preset and preset != "default":
        # the codelab's recipe exactly: no jitter either
        p = PRESETS[preset]
        base = Recipe(epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
                      validation_split=base.validation_split, seed=base.seed, min_examples=base.min_examples)
    return Recipe(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def _r(x: float | None) -> float | None:
    """Four decimals: the metadata is part of a ~6 KB file, full float reprs would be a tenth of it."""
    return None if x is None else round(float(x), 4)


def metadata(config: Config, result: TrainResult, recipe: Recipe, agreement: float) -> dict:
    last = result.history[-1] if result.history else None
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "labels": list(result.labels),
        "sample_rate": SAMPLE_RATE, "fft_size": FFT_SIZE, "hop": config.frontend.hop, "bins": NUM_BINS,
        "frames": NUM_FRAMES, "input": "dB",
        "normalization": {"mean": net.NORM_MEAN, "std": net.NORM_STD},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "created_by": f"edge-slider {__version__}",
        "counts": result.counts,
        "recipe": {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
                   "validation_split": recipe.validation_split, "seed": recipe.seed,
                   "gain_jitter_db": recipe.gain_jitter_db},
        "metrics": {"loss": _r(last.loss) if last else None, "accuracy": _r(last.accuracy) if last else None,
                    "val_loss": _r(last.val_loss) if last else None,
                    "val_accuracy": _r(last.val_accuracy) if last else None,
                    "int8_agreement": _r(agreement), "train_seconds": round(result.seconds, 3)},
    }


def build_model(config: Config, x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], recipe: Recipe,
                progress=None, should_stop=None) -> tuple[bytes, TrainResult, float]:
    """Train, quantize on the training windows, write the .tflite bytes."""
    # NOTE: imported here: the schema package costs ~3 MB of RSS, needed only while exporting.
    from edge.model.tflite_writer import write_model
    result = train(x, y, labels, recipe, progress=progress, should_stop=should_stop)
    qm = quantize(result.params, x)
    xn = net.normalize(x[:2000])
    agreement = float(np.mean(simulate(qm, xn).argmax(1) == net.forward(result.params, xn).argmax(1)))
    return write_model(qm, metadata(config, result, recipe, agreement)), result, agreement


def train_from_store(store, registry, config: Config, progress=None, should_stop=None,
                     recipe: Recipe | None = None) -> TrainOutcome:
    """Train on every stored example of the configured labels and install the model."""
    t0 = time.perf_counter()
    recipe = recipe or recipe_from_config(config)
    x, y, labels = store.load(config.labels)
    data, result, agreement = build_model(config, x, y, labels, recipe, progress, should_stop)
    version = registry.install(data, expect_hop=config.frontend.hop)
    return TrainOutcome(version, result, len(data), time.perf_counter() - t0, agreement)


def evaluate_classifier(classifier, x: np.ndarray, y: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy / precision / recall / confusion of a loaded classifier on a labelled dataset.

    The dataset's labels are mapped onto the model's by name, so a dataset may order them differently.
    """
    from edge.errors import ModelError
    missing = [lb for lb in labels if lb not in classifier.labels]
    if missing:
        raise ModelError(f"dataset labels {', '.join(missing)} are not in the model ({', '.join(classifier.labels)})")
    y_model = np.array([classifier.labels.index(labels[int(k)]) for k in y], dtype=np.int64)
    pred = classifier.predict_batch(x).argmax(1)
    report = confusion_report(y_model, pred, len(classifier.labels))
    report["labels"] = list(classifier.labels)
    report["n"] = int(len(y))
    return report
