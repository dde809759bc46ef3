"""Store → trainer → int8 writer → registry: what the Train button, CLI and MQTT all run."""

from __future__ import annotations

import dataclasses

import datetime as _dt
import logging
import time
from dataclasses import dataclass

import numpy as np

from edge import __version__
from edge.config import FFT_SIZE, NUM_BINS, NUM_FRAMES, SAMPLE_RATE, Config
from edge.model import calibrate
from edge.model import network as net
from edge.model.bank import load_banks
from edge.model.calibrate import REPORT_KEY, Calibration
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
    calibration: Calibration | None = None

    @property
    def val_accuracy(self) -> float | None:
        return self.result.val_accuracy


def recipe_from_config(config: Config, preset: str | None = None, **overrides) -> Recipe:
    t = config.train
    # Every setting both have, by name (one home: a new train.* key that the recipe knows needs no line
    # here); the bank's shares only count with the bank on.
    shared = {f.name for f in dataclasses.fields(Recipe)} & {f.name for f in dataclasses.fields(t)}
    base = Recipe(**{**{name: getattr(t, name) for name in shared},
                     "bank_ratio": t.bank_ratio if t.bank else 0.0, "bank_class": t.bank_class and t.bank, "mix_prob": t.mix_prob if t.bank else 0.0})
    if preset and preset != "default":
        # the codelab's recipe exactly: no jitter either
        p = PRESETS[preset]
        base = Recipe(epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
                      validation_split=base.validation_split, seed=base.seed, min_examples=base.min_examples)
    return Recipe(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def _r(x: float | None) -> float | None:
    """Four decimals: the metadata is part of a ~6 KB file, full float reprs would be a tenth of it."""
    return None if x is None else round(float(x), 4)


def metadata(config: Config, result: TrainResult, recipe: Recipe, agreement: float,
             calibration: Calibration | None = None, heldout: dict | None = None) -> dict:
    last = result.history[-1] if result.history else None
    extra = {}
    if calibration is not None:
        extra[REPORT_KEY] = calibration.to_dict()
    if heldout is not None:
        extra["heldout"] = heldout
    return {**extra, 
        "format": FORMAT, "format_version": FORMAT_VERSION, "labels": list(result.labels),
        "sample_rate": SAMPLE_RATE, "fft_size": FFT_SIZE, "hop": config.frontend.hop, "bins": NUM_BINS,
        "frames": NUM_FRAMES, "input": "dB",
        "normalization": {"mean": net.NORM_MEAN, "std": net.NORM_STD},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "created_by": f"edge-slider {__version__}",
        "counts": result.counts,
        "recipe": {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
                   "validation_split": recipe.validation_split, "seed": recipe.seed,
                   "gain_jitter_db": recipe.gain_jitter_db, "bank_ratio": recipe.bank_ratio,
                   "bank_weight": recipe.bank_weight, "bank_class": recipe.bank_class, "depth": recipe.depth, "mix_prob": recipe.mix_prob,
                   "warp_prob": recipe.warp_prob, "reverb_prob": recipe.reverb_prob,
                   "refit_epochs": recipe.refit_epochs},
        "metrics": {"loss": _r(last.loss) if last else None, "accuracy": _r(last.accuracy) if last else None,
                    "val_loss": _r(last.val_loss) if last else None,
                    "val_accuracy": _r(last.val_accuracy) if last else None,
                    "int8_agreement": _r(agreement), "train_seconds": round(result.seconds, 3)},
    }


@dataclass
class Built:
    """What one training produced: the model file and everything the report needs."""

    data: bytes
    result: TrainResult
    agreement: float
    calibration: Calibration | None
    heldout: dict | None
    """Confusion on the held-out holds (rows = truth), or None when nothing was held out."""


def build_model(config: Config, x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], recipe: Recipe,
                progress=None, should_stop=None, groups: np.ndarray | None = None) -> Built:
    """Train (with the background bank when configured), calibrate the thresholds, quantize on the
    training windows, write the .tflite bytes."""
    # NOTE: imported here: the schema package costs ~3 MB of RSS, needed only while exporting.
    from edge.model.tflite_writer import write_model
    background = labels.index(config.background_label) if config.background_label in labels else None
    banks = load_banks() if config.train.bank and background is not None else None
    bank, calib_bank = banks if banks is not None else (None, None)
    result = train(x, y, labels, recipe, progress=progress, should_stop=should_stop, groups=groups,
                   bank=bank if recipe.bank_ratio > 0 else None, background=background)
    calibration, heldout = _report(config, result, x, y, labels, background, calib_bank)
    del bank, calib_bank, banks
    qm = quantize(result.params, x)
    xn = net.normalize(x[:2000])
    agreement = float(np.mean(simulate(qm, xn).argmax(1) == net.forward(result.params, xn).argmax(1)))
    meta = metadata(config, result, recipe, agreement, calibration, heldout)
    return Built(write_model(qm, meta), result, agreement, calibration, heldout)


def _report(config: Config, result: TrainResult, x: np.ndarray, y: np.ndarray, labels: tuple[str, ...],
            background: int | None, bank=None) -> tuple[Calibration | None, dict | None]:
    """Held-out confusion, and thresholds for the false-move budget on negatives never trained on."""
    va = result.val_index if result.val_index is not None else np.zeros(0, np.int64)
    heldout = None
    if va.size:
        heldout = confusion_report(y[va], calibrate.predict(result.heldout_params, x[va]).argmax(1), len(labels))
        heldout["n"] = int(va.size)
    if background is None:
        return None, heldout
    acting = [i != background and config.class_spec(lb).action != "none" for i, lb in enumerate(labels)]
    room = x[y == background]
    # NOTE: the held-out background holds are negatives the validated model never heard; the installed
    # (refit) model has, so only the bank's calibration clips, never trained on, judge its thresholds.
    extra = [x[va][y[va] == background]] if va.size and result.validated is None else []
    negatives = calibrate.negative_streams(bank, room, extra)
    held = {lb: x[va][y[va] == i] for i, lb in enumerate(labels)} if va.size else {}
    # bank sounds never trained on, to play behind the held-out sounds (how much recall a threshold costs)
    noise = bank.sample(np.random.default_rng(0), 2000) if bank is not None else None
    cal = calibrate.calibrate(result.params, labels, acting, config.listen, config.frontend.hop, negatives, held,
                              heldout_params=result.heldout_params, room_noise=noise)
    return cal, heldout


def train_from_store(store, registry, config: Config, progress=None, should_stop=None,
                     recipe: Recipe | None = None) -> TrainOutcome:
    """Train on every stored example of the configured labels and install the model."""
    t0 = time.perf_counter()
    recipe = recipe or recipe_from_config(config)
    x, y, labels, sessions = store.load_with_sessions(config.labels)
    built = build_model(config, x, y, labels, recipe, progress, should_stop, groups=sessions)
    version = registry.install(built.data, expect_hop=config.frontend.hop)
    return TrainOutcome(version, built.result, len(built.data), time.perf_counter() - t0, built.agreement,
                        built.calibration)


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
