"""The retained ``state`` report: what a monitor, Home Assistant and the web console see of the device.

Built on any thread from the figures the loop keeps up to date (it never reads the store or a
live collector twice: the loop may change them at any moment).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge import __version__
from edge.config import SAMPLE_RATE
from edge.memory import rss_mb
from edge.engine.modes import Mode
from edge.model.calibrate import report_in


COLLECTING, TRAINING, LISTENING = Mode.COLLECTING, Mode.TRAINING, Mode.LISTENING


def state_report(engine: Any) -> dict[str, Any]:
    """The report of an :class:`edge.engine.core.Engine` (typed ``Any``: the engine imports this module)."""
    counts = engine.counts     # NOTE: replaced whole by the loop, never changed in place
    clf = engine.classifier
    meta = getattr(clf, "metadata", None) or {}
    metrics = meta.get("metrics", meta.get("training", {})) if isinstance(meta, dict) else {}
    hold = engine.hold    # NOTE: once; the loop may set it to None at any moment
    collecting = hold.label if hold is not None else None
    return {
        "mode": engine.mode,
        # Listening as HA's switch shows it: ON through a training/collection listening resumes after.
        "listening": engine.mode == LISTENING or (engine.mode in (TRAINING, COLLECTING) and engine.resume_listening)
        or (engine.mode == TRAINING and engine.config.listen.autostart),
        "collecting": collecting,
        "labels": {lb: counts.get(lb, 0) for lb in engine.config.labels},
        "model": {"version": getattr(clf, "version", None) if clf else None,
                  "val_accuracy": metrics.get("val_accuracy") if isinstance(metrics, dict) else None,
                  "false_per_min_estimate": _estimate(meta),
                  "runtime": getattr(clf, "runtime", None) if clf else None},
        "position": round(engine.slider.position, 3),
        "threshold": engine.policy.threshold,
        "thresholds": engine.policy.thresholds,
        "decision_mode": engine.config.listen.mode,
        "last_label": engine.last_label,
        # stream_s only grows while audio really flows: a monitor can tell a stalled mic from a quiet room
        "audio": {"sample_rate": SAMPLE_RATE, "level_dbfs": _finite(engine.level_dbfs),
                  "stream_s": round(engine.samples_in / SAMPLE_RATE, 1), **engine.audio_health()},
        "classify_us": round(engine.classify_us, 1),
        "hop_us": round(engine.hop_us, 1),
        "cpu_percent": round(engine.cpu_percent, 1),
        "rss_mb": round(rss_mb(), 1),
        "uptime_s": round(time.monotonic() - engine.started, 1),
        "version": __version__,
        "problems": dict(engine.problems),
    }


def _estimate(meta: Any) -> float | None:
    """The model's calibrated false moves per minute (None for a model trained without calibration)."""
    value = report_in(meta).get("estimated_false_per_min")
    return value if isinstance(value, (int, float)) else None


def _finite(x: float) -> float | None:
    return round(float(x), 1) if np.isfinite(x) else None
