"""Scores a stream's decisions against its ground truth: recall, false moves, cross-fire, latency, sweep."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

LATE_S = 0.25
"""A decision up to this long after an event's offset still counts for it (the policy needs k hops)."""
MERGE_S = 0.2
"""False decisions this close together are one false move (a servo jitter the user sees once)."""
THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
BUDGETS = (0.5, 1.0, 2.0, 5.0)
"""False moves per minute of background within which the sweep reports the best macro recall."""


@dataclasses.dataclass(frozen=True)
class Decision:
    t: float
    label: str


def merge(times: Sequence[float], gap_s: float = MERGE_S) -> list[float]:
    """Collapse runs of times each ≤ ``gap_s`` after the previous one into the run's first time."""
    out: list[float] = []
    last = None
    for t in sorted(times):
        if last is None or t - last > gap_s + 1e-9:
            out.append(t)
        last = t
    return out


def _windows(events, taught) -> list[tuple[float, float, str]]:
    return [(e.onset, e.offset + LATE_S, e.label) for e in events if e.label in taught]


def _union_s(windows, duration: float) -> float:
    total, end = 0.0, -1e9
    for a, b, _ in sorted(windows):
        a, b = max(a, end), min(b, duration)
        if b > a:
            total += b - a
        end = max(end, b)
    return total


def score_stream(decisions: Iterable[Decision], events, duration: float, taught: Sequence[str]) -> dict:
    """Recall per taught class, false moves per minute outside every event, cross-fire, latency."""
    decisions = sorted(decisions, key=lambda d: d.t)
    windows = _windows(events, taught)
    times = np.array([d.t for d in decisions])
    hits: dict[str, list[bool]] = {c: [] for c in taught}
    latencies, cross = [], 0
    for a, b, label in windows:
        lo, hi = np.searchsorted(times, a - 1e-9), np.searchsorted(times, b + 1e-9)
        inside = decisions[lo:hi]
        mine = [d.t for d in inside if d.label == label]
        hits[label].append(bool(mine))
        if mine:
            latencies.append(mine[0] - a)
        cross += sum(1 for d in inside if d.label != label and d.label in taught)
    outside = [d for d in decisions if not any(a - 1e-9 <= d.t <= b + 1e-9 for a, b, _ in windows)]
    false = merge([d.t for d in outside])
    background_min = max(duration - _union_s(windows, duration), 1e-9) / 60.0
    recall = {c: (float(np.mean(h)) if h else None) for c, h in hits.items()}
    known = [r for r in recall.values() if r is not None]
    return {
        "events": {c: len(h) for c, h in hits.items()},
        "recall": recall,
        "macro_recall": float(np.mean(known)) if known else None,
        "false_moves": len(false),
        "background_min": round(background_min, 3),
        "false_per_min": len(false) / background_min,
        "cross_fire": cross,
        "latency_median_s": float(np.median(latencies)) if latencies else None,
        "latency_p90_s": float(np.percentile(latencies, 90)) if latencies else None,
        "false_times": false,
    }


def hits_by(decisions: Iterable[Decision], events, taught: Sequence[str], key) -> dict[str, list[int]]:
    """[found, total] of taught events grouped by ``key(event)`` (e.g. its source file, or its reverb/EQ)."""
    times = sorted((d.t, d.label) for d in decisions)
    out: dict[str, list[int]] = {}
    for e in events:
        if e.label not in taught:
            continue
        found = any(e.onset - 1e-9 <= t <= e.offset + LATE_S + 1e-9 and lb == e.label for t, lb in times)
        row = out.setdefault(key(e), [0, 0])
        row[0] += int(found)
        row[1] += 1
    return dict(sorted(out.items()))


def condition(e) -> str:
    """How a test event was altered: clean, speed, reverb, eq (the generator writes it into the source)."""
    s = e.source
    tags = [t for t, words in (("speed", ("speed",)), ("reverb", ("reverb",)),
                               ("eq", ("equalizer", "highpass", "lowpass"))) if any(w in s for w in words)]
    return "+".join(tags) or "clean"


def blame(false_times: Sequence[float], events, taught: Sequence[str], slack_s: float = 0.5) -> Counter:
    """Which distractor kind (talk, near_rhyme, effect, tv, ...) was playing at each false move."""
    out: Counter = Counter()
    others = [e for e in events if e.label not in taught]
    for t in false_times:
        # a foreground distractor beats the TV bed it plays over
        over = [e for e in others if e.onset - 1e-9 <= t <= e.offset + slack_s]
        fg = [e for e in over if e.label != "tv"]
        out[(fg or over)[0].label if (fg or over) else "room tone"] += 1
    return out


def blame_sources(false_times: Sequence[float], events, taught: Sequence[str], slack_s: float = 0.5,
                  key=lambda e: e.source) -> Counter:
    """Like :func:`blame`, by ``key(event)`` of the foreground distractor (default: its source file)."""
    out: Counter = Counter()
    others = [e for e in events if e.label not in taught and e.label != "tv"]
    for t in false_times:
        over = [e for e in others if e.onset - 1e-9 <= t <= e.offset + slack_s]
        out[key(over[0]) if over else "(tv / room tone)"] += 1
    return out


def family(e) -> str:
    """Which package a distractor came from (acted game voices, espeak talk, ...)."""
    s = e.source
    for prefix, name in (("espeak/", "espeak-ng talk"), ("ktuberling/", "ktuberling word"),
                         ("sonic-pi/", "sonic-pi sample"), ("music/", "music")):
        if s.startswith(prefix):
            return name
    if s.startswith("hedgewars/") and s.count("/") == 1:
        return "hedgewars effect"
    return "hedgewars voice"


def replay(trace: dict, listen, classes, thresholds: Sequence[float],
           calibrated: dict[str, float] | None = None) -> dict[float | str, list[Decision]]:
    """The project's own DecisionPolicy over a ``listen --trace``, once per (uniform) threshold, and
    with ``calibrated`` per-class thresholds (the model's own, as the daemon uses them) under the
    key ``"calibrated"``."""
    from edge.listen.decision import DecisionPolicy
    labels = [str(x) for x in trace["labels"]]
    order = [labels.index(c.name) for c in classes]
    probs = np.asarray(trace["probs"])[:, order]
    t, level = np.asarray(trace["t"]).tolist(), np.asarray(trace["level_db"]).tolist()
    names = [c.name for c in classes]
    out = {}
    runs: list[tuple[float | str, float, dict | None]] = [(th, th, None) for th in thresholds]
    if calibrated:
        runs.append(("calibrated", listen.threshold, calibrated))
    for key, th, per_class in runs:
        policy = DecisionPolicy(dataclasses.replace(listen, threshold=th), classes)
        policy.set_thresholds(per_class)
        acts = []
        for i in range(len(t)):
            v = policy.update(probs[i], level[i], t[i])
            if v.act is not None:
                acts.append(Decision(t[i], v.act))
        out[key] = acts
    assert names == list(policy.labels)
    return out


def sweep_summary(points: list[dict]) -> dict:
    """Best macro recall at each false-moves budget, from per-threshold test scores."""
    best = {}
    for budget in BUDGETS:
        ok = [p for p in points if p["false_per_min"] <= budget and p["macro_recall"] is not None]
        top = max(ok, key=lambda p: (p["macro_recall"], -p["false_per_min"]), default=None)
        best[f"{budget:g}"] = None if top is None else {"macro_recall": top["macro_recall"],
                                                        "threshold": top["threshold"]}
    return best
