"""Drives the real CLI per scenario and seed: collect each hold → train → listen --trace, then scores."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edge.config import Config
from edge.errors import UsageError
from edge.tooling.roombench import score
from edge.tooling.roombench.scenarios import GEN_VERSION, Scenario, Sizes, Stream, build_scenario, make_household
from edge.tooling.roombench.sources import Sources

log = logging.getLogger(__name__)

TAUGHT = ("left", "right")


def default_work_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-slider" / "roombench"


def check_config(config: Config) -> None:
    missing = [c for c in TAUGHT if c not in config.labels]
    if missing or config.background_label is None:
        raise UsageError(f"bench --room: the config's classes need {', '.join(TAUGHT)} and a background class "
                         f"(have {', '.join(config.labels)}): use the default [classes] or add them")


def cli(argv: list[str]) -> str:
    """``edge-slider ARGV`` in this process (the same code as the command); its stdout, or a UsageError."""
    from edge.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    if rc != 0:
        raise UsageError(f"bench --room: `edge-slider {' '.join(argv)}` exited {rc}: {buf.getvalue()[-400:]}")
    return buf.getvalue()


def _read_events(path: Path) -> list[score.Decision]:
    return [score.Decision(d["t"], d["label"]) for d in map(json.loads, path.read_text().splitlines()) if d]


def listen(base: list[str], stream: Stream, out: Path, tag: str) -> tuple[list[score.Decision], dict]:
    events, trace = out / f"{tag}.jsonl", out / f"{tag}.npz"
    cli(base + ["listen", "--from-wav", stream.path, "--events", str(events), "--trace", str(trace)])
    with np.load(trace) as z:
        tr = {k: z[k] for k in z.files}
    return _read_events(events), tr


def run_one(sc: Scenario, household: list[Stream], config: Config, config_path: str | None, work: Path,
            progress: Callable[[str], None]) -> dict:
    state = Path(tempfile.mkdtemp(prefix=f"state-{sc.name}-{sc.seed}-", dir=work))
    base = (["--config", config_path] if config_path else []) + ["--state-dir", str(state)]
    try:
        for label, path in sc.holds:
            cli(base + ["collect", "--label", label, "--from-wav", path])
        t0 = time.perf_counter()
        cli(base + ["train"])
        train_s = time.perf_counter() - t0
        models = sorted((state / "models").glob("v*.tflite"))
        model_bytes = models[-1].stat().st_size if models else None
        thresholds = sorted(set(score.THRESHOLDS) | {config.listen.threshold})
        t0 = time.perf_counter()
        decisions, trace = listen(base, sc.test, state, "test")
        listen_s = time.perf_counter() - t0
        decision = model_decision(state)
        calibrated = (decision.get("thresholds") or None) if config.listen.calibrated else None
        replays = score.replay(trace, config.listen, config.classes, thresholds, calibrated)
        matches = _same(replays["calibrated" if calibrated else config.listen.threshold], decisions)
        test = _score_test(sc, decisions)
        sweep = []
        for th in thresholds:
            s = score.score_stream(replays[th], sc.test.events, sc.test.duration, TAUGHT)
            sweep.append({"threshold": th, "macro_recall": s["macro_recall"], "false_per_min": s["false_per_min"],
                          "cross_fire": s["cross_fire"]})
        house, house_sweep, house_matches = _household(sc, household, config, base, state, thresholds, calibrated)
        matches = matches and house_matches
        for p in sweep:
            p["household_per_hour"] = house_sweep[p["threshold"]] / max(house["hours"], 1e-9)
        test.pop("false_times")
        return {"scenario": sc.name, "seed": sc.seed, "test": test, "household": house, "sweep": sweep,
                "best_within": score.sweep_summary(sweep), "model_bytes": model_bytes,
                "train_s": round(train_s, 2), "listen_test_s": round(listen_s, 2),
                "test_minutes": round(sc.test.duration / 60, 2), "replay_matches_listen": matches,
                "calibration": decision, "notes": sc.notes}
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _score_test(sc: Scenario, decisions: list[score.Decision]) -> dict[str, Any]:
    """The test stream's scores, with the false moves blamed on what was playing and recall split up."""
    test = score.score_stream(decisions, sc.test.events, sc.test.duration, TAUGHT)
    test["blame"] = dict(score.blame(test["false_times"], sc.test.events, TAUGHT))
    test["blame_sources"] = dict(score.blame_sources(test["false_times"], sc.test.events, TAUGHT).most_common(8))
    test["blame_family"] = dict(score.blame_sources(test["false_times"], sc.test.events, TAUGHT,
                                                    key=score.family).most_common())
    test["recall_by_source"] = score.hits_by(decisions, sc.test.events, TAUGHT,
                                             lambda e: f"{e.label} {e.source.split(' ')[0]}")
    test["recall_by_condition"] = score.hits_by(decisions, sc.test.events, TAUGHT, score.condition)
    return test


def _household(sc: Scenario, household: list[Stream], config: Config, base: list[str], state: Path,
               thresholds: list[float], calibrated: dict[str, float] | None
               ) -> tuple[dict[str, Any], dict[float, int], bool]:
    """Listen to every household chunk: its false moves and their blame, the false moves per threshold
    of the replay, and whether the replay decided as ``listen`` did on every chunk."""
    house: dict[str, Any] = {"false_moves": 0, "hours": 0.0, "blame": {}, "blame_sources": {}, "blame_family": {}}
    house_sweep = {th: 0 for th in thresholds}
    matches = True
    teach_packs = tuple(f"/{p}/" for p in sc.notes.get("teach_packs", ()))
    for k, chunk in enumerate(household):
        d, tr = listen(base, chunk, state, f"household-{k}")
        # NOTE: users talk in their own room: say apart the false moves on the voices that taught.
        events = [dataclasses.replace(e, label=e.label + " (teaching voice)") if teach_packs and
                  any(p in e.source for p in teach_packs) else e for e in chunk.events]
        r = score.replay(tr, config.listen, config.classes, thresholds, calibrated)
        matches = matches and _same(r["calibrated" if calibrated else config.listen.threshold], d)
        s = score.score_stream(d, chunk.events, chunk.duration, TAUGHT)
        house["false_moves"] += s["false_moves"]
        house["hours"] += chunk.duration / 3600
        for kind, n in score.blame(s["false_times"], events, TAUGHT).items():
            house["blame"][kind] = house["blame"].get(kind, 0) + n
        for src, n in score.blame_sources(s["false_times"], chunk.events, TAUGHT).items():
            house["blame_sources"][src] = house["blame_sources"].get(src, 0) + n
        for fam, n in score.blame_sources(s["false_times"], chunk.events, TAUGHT, key=score.family).items():
            house["blame_family"][fam] = house["blame_family"].get(fam, 0) + n
        for th in thresholds:
            house_sweep[th] += len(score.merge([x.t for x in r[th]]))
    house["false_per_hour"] = house["false_moves"] / max(house["hours"], 1e-9)
    house["blame_sources"] = dict(sorted(house["blame_sources"].items(), key=lambda kv: -kv[1])[:8])
    return house, house_sweep, matches


def model_decision(state: Path) -> dict[str, Any]:
    """The installed model's calibration report (its per-class thresholds and estimates), {} if none."""
    from edge.model.calibrate import report_in
    from edge.model.registry import ModelRegistry
    clf = ModelRegistry(state / "models").load_current(expect_hop=None)
    return dict(report_in(clf.metadata)) if clf is not None else {}


def _same(replayed: list[score.Decision], listened: list[score.Decision]) -> bool:
    """The replay decides as ``listen`` did (its JSON lines round t to 0.1 ms)."""
    return [(round(d.t, 4), d.label) for d in replayed] == [(round(d.t, 4), d.label) for d in listened]


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict]) -> dict:
    """Per scenario: the median over seeds of every headline figure."""
    out = {}
    for name in dict.fromkeys(r["scenario"] for r in runs):
        rs = [r for r in runs if r["scenario"] == name]
        sweep = []
        for i, p in enumerate(rs[0]["sweep"]):
            pts = [r["sweep"][i] for r in rs]
            sweep.append({"threshold": p["threshold"], **{k: _median([q[k] for q in pts]) for k in
                                                          ("macro_recall", "false_per_min", "cross_fire",
                                                           "household_per_hour")}})
        out[name] = {
            "seeds": [r["seed"] for r in rs],
            "recall": {c: _median([r["test"]["recall"][c] for r in rs]) for c in TAUGHT},
            "macro_recall": _median([r["test"]["macro_recall"] for r in rs]),
            "false_per_min": _median([r["test"]["false_per_min"] for r in rs]),
            "cross_fire": _median([r["test"]["cross_fire"] for r in rs]),
            "latency_median_s": _median([r["test"]["latency_median_s"] for r in rs]),
            "latency_p90_s": _median([r["test"]["latency_p90_s"] for r in rs]),
            "household_per_hour": _median([r["household"]["false_per_hour"] for r in rs]),
            "best_within": score.sweep_summary(sweep),
            "sweep": sweep,
            "model_bytes": _median([r["model_bytes"] for r in rs]),
            "train_s": _median([r["train_s"] for r in rs]),
            "replay_matches_listen": all(r["replay_matches_listen"] for r in rs),
        }
    return out


def run_room(config: Config, config_path: str | None, seeds: Sequence[int], scenarios: Sequence[str],
             work: Path | None, quick: bool, progress: Callable[[str], None] = lambda m: None) -> dict:
    check_config(config)
    t_start = time.perf_counter()
    work = Path(work) if work else default_work_dir()
    work.mkdir(parents=True, exist_ok=True)
    src = Sources(work / f"sources-v{GEN_VERSION}")
    src.check()
    sizes = Sizes.quick() if quick else Sizes()
    runs = []
    for seed in seeds:
        root = work / f"gen-v{GEN_VERSION}-s{seed}{'-quick' if quick else ''}"
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        household = make_household(src, seed, sizes, root)
        progress(f"room bench: seed {seed}: household {sum(h.duration for h in household) / 60:.0f} min ready "
                 f"({time.perf_counter() - t0:.1f} s)")
        for name in scenarios:
            t0 = time.perf_counter()
            sc = build_scenario(src, name, seed, sizes, root)
            gen_s = time.perf_counter() - t0
            r = run_one(sc, household, config, config_path, work, progress)
            r["generate_s"] = round(gen_s, 2)
            r["run_s"] = round(time.perf_counter() - t0 - gen_s, 2)
            progress(f"room bench: {name} seed {seed}: macro recall {r['test']['macro_recall']:.2f}, "
                     f"{r['test']['false_per_min']:.2f} false/min, household {r['household']['false_per_hour']:.1f}/h "
                     f"(generate {gen_s:.1f} s, run {r['run_s']:.1f} s)")
            runs.append(r)
    return {"kind": "room", "generator_version": GEN_VERSION, "quick": quick, "seeds": list(seeds),
            "config": config_path, "listen": dataclasses.asdict(config.listen),
            "scenarios": summarise(runs), "runs": runs, "wall_s": round(time.perf_counter() - t_start, 1)}
