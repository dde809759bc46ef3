"""Putting a model in service: its outputs meet the configured classes by name, once.

A mismatch is survivable (a class the model lacks is never detected, an output no class names
never acts) and reported as the ``classes`` problem; a model that detects no acting class at all
cannot listen. The model's own calibrated thresholds come with it unless ``listen.calibrated``
is off.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.config import Config
from edge.listen.decision import DecisionPolicy
from edge.model.calibrate import report_in
from edge.engine.problems import Problems

log = logging.getLogger(__name__)


def bind_model(classifier: Any, policy: DecisionPolicy, config: Config, problems: Problems) -> str | None:
    """Bind ``classifier`` (None: no model) to ``policy``; returns why listening is refused, or None."""
    if classifier is None:
        problems.clear("classes")
        return None
    b = policy.bind(tuple(classifier.labels))
    use_model_thresholds(classifier, policy, config)
    name = f"model v{classifier.version}" if getattr(classifier, "version", None) else "the model"
    parts = []
    refusal = None
    if b.missing:
        parts.append(f"configured class{'es' if len(b.missing) > 1 else ''} "
                     f"{', '.join(map(repr, b.missing))} not in {name} (its labels: "
                     f"{', '.join(classifier.labels)}): never detected")
    if b.extra:
        parts.append(f"{name} output{'s' if len(b.extra) > 1 else ''} {', '.join(map(repr, b.extra))} "
                     + ("not configured classes: they never act" if len(b.extra) > 1
                        else "not a configured class: never acts"))
    if not b.acting:
        acting = [c.name for c in config.classes if c.action != "none" and not c.background]
        refusal = (f"{name} detects none of the configured acting classes "
                   f"({', '.join(acting) or 'none configured'}): retrain (`edge-slider train`) "
                   "or set [classes] to the model's labels")
        parts.append("listening refused")
    if parts:
        problems.report("classes", "model", "classes do not match: " + "; ".join(parts)
                        + "; fix: retrain (`edge-slider train`) or make [classes] match the model")
    else:
        problems.clear("classes")
    return refusal


def use_model_thresholds(classifier: Any, policy: DecisionPolicy, config: Config) -> None:
    """The configured threshold, then the model's per-class calibrated ones (if it has any)."""
    policy.threshold = config.listen.threshold
    if classifier is None or not config.listen.calibrated:
        return
    per_class = report_in(getattr(classifier, "metadata", None)).get("thresholds")
    if isinstance(per_class, dict):
        policy.set_thresholds({k: float(v) for k, v in per_class.items() if isinstance(v, (int, float))})
        log.info("decision thresholds from the model's calibration: %s",
                 ", ".join(f"{k} {v:.3f}" for k, v in policy.thresholds.items()))
