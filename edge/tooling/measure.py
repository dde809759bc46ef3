"""Bench figures on shared/bench's seed-train → seed-test (the codelab task, with TF.js/Keras anchors)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge.model import network as net
from edge.model.classifier import Classifier
from edge.model.quantize import quantize
from edge.model.tflite_writer import write_model
from edge.model.train import PRESETS, Recipe, TrainResult, train
from edge.teach.npz_dataset import read_npz


def _fit_and_score(x, y, xt, yt, labels, recipe: Recipe) -> tuple[float, float, TrainResult]:
    t0 = time.perf_counter()
    result = train(x, y, labels, recipe)
    seconds = time.perf_counter() - t0
    acc = float(np.mean(net.forward(result.params, net.normalize(xt)).argmax(1) == yt))
    return seconds, acc, result


def classify_us(data: bytes, windows: np.ndarray, n: int = 3000) -> tuple[float, str]:
    """One window, full call (normalize, set input, invoke, read output, argmax): (median µs, runtime name)."""
    clf = Classifier(data)
    times = []
    for i in range(n):
        w = windows[i % len(windows)]
        t0 = time.perf_counter()
        int(np.argmax(clf.predict(w)))
        times.append(time.perf_counter() - t0)
    return float(np.median(times[100:]) * 1e6), clf.runtime


PEER_MODEL = "tf-converter-codelab-int8.tflite"
"""The TF converter's int8 model of the same network (float I/O, input (dB + 100) / 10), copied from
shared/bench into tests/data: the anchor our writer's model is timed against."""


def classify_us_interleaved(ours: bytes, theirs: bytes, windows: np.ndarray, n: int = 3000) -> tuple[float, float]:
    """Median µs of one full call of each model, alternating call by call in one process, so a
    noisy machine slows both alike and the ratio holds."""
    a = Classifier(ours)
    b = Classifier(theirs, name=PEER_MODEL, labels=list(a.labels))
    ta, tb = [], []
    for i in range(n):
        w = windows[i % len(windows)]
        t0 = time.perf_counter()
        int(np.argmax(a.predict(w)))
        t1 = time.perf_counter()
        int(np.argmax(b.predict(w)))
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return float(np.median(ta[100:]) * 1e6), float(np.median(tb[100:]) * 1e6)


def train_with_bank_s(x: np.ndarray, y: np.ndarray, labels: tuple[str, ...], repeats: int = 3) -> dict:
    """What pressing Train costs with the device defaults: 1,500 user windows in 12 holds, the
    background bank mixed in, held-out report, calibration and export (median wall seconds)."""
    from edge.config import config_from_dict
    from edge.memory import roomy_heap
    from edge.model.pipeline import build_model, recipe_from_config
    import tomllib
    cfg = config_from_dict(tomllib.loads(SEED_CLASSES_TOML), env={})
    idx = np.resize(np.arange(len(y)), 1500)
    xs, ys = x[idx], y[idx]
    groups = np.array([f"hold-{c}-{i % 4}" for i, c in enumerate(ys)], dtype=object)
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        # NOTE: as the daemon's training job runs it (`bench` has configured the daemon's malloc by now).
        with roomy_heap():
            built = build_model(cfg, xs, ys, labels, recipe_from_config(cfg, seed=seed), groups=groups)
        times.append(time.perf_counter() - t0)
    return {"train_s_1500_with_bank_median": float(np.median(times)), "model_bytes_with_calibration": len(built.data)}


SEED_CLASSES_TOML = ('[classes.low]\naction = "step"\nvalue = -0.1\n[classes.mid]\naction = "step"\n'
                     'value = 0.1\n[classes.noise]\naction = "none"\nbackground = true\n')
"""A config whose classes are the seed data's labels (low, mid, noise), for `edge-slider train` on it."""


def peak_rss_of_train_cli(bench_dir: Path) -> float:
    """Peak RSS (MB) of a real `edge-slider train` process on the 450 seed windows."""
    with tempfile.TemporaryDirectory(prefix="edge-bench-train-") as tmp:
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(SEED_CLASSES_TOML)
        base = [sys.executable, "-m", "edge", "--config", str(cfg), "--state-dir", tmp]
        subprocess.run(base + ["dataset", "import", str(bench_dir / "seed-train.npz")], check=True,
                       capture_output=True)
        # NOTE: a forked child's ru_maxrss starts at the parent's size (a Linux quirk), so the child
        # reports its own VmHWM (per address space, reset by exec) on exit.
        wrapper = ("import atexit, sys\n"
                   "def hwm():\n"
                   "    for line in open('/proc/self/status'):\n"
                   "        if line.startswith('VmHWM:'):\n"
                   "            print('VmHWM', line.split()[1], file=sys.stderr)\n"
                   "atexit.register(hwm)\n"
                   "from edge.cli import main\n"
                   "sys.exit(main(sys.argv[1:]))\n")
        r = subprocess.run([sys.executable, "-c", wrapper] + base[3:] + ["train"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"edge-slider train failed in the bench: {r.stderr.strip()[-200:]}")
        kb = next(int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("VmHWM"))
        return kb / 1024


def bench_figures(bench_dir: Path, quick: bool = False, progress: Callable[[str], None] = print) -> dict:
    x, y, labels = read_npz(bench_dir / "seed-train.npz")
    xt, yt, _ = read_npz(bench_dir / "seed-test.npz")
    out: dict = {}
    seeds = range(3 if quick else 10)
    for name in ("default", "codelab"):
        recipe = PRESETS[name]
        times, accs = [], []
        for seed in seeds:
            s, acc, _ = _fit_and_score(x, y, xt, yt, labels, Recipe(**{**recipe.__dict__, "seed": seed}))
            times.append(s)
            accs.append(acc)
        out[f"train_s_{name}_median"] = float(np.median(times[:5]))
        out[f"test_acc_{name}_median"] = float(np.median(accs))
        out[f"test_acc_{name}_worst"] = float(np.min(accs))
        progress(f"  {name}: train {out[f'train_s_{name}_median']:.3f} s, accuracy median "
                 f"{100 * out[f'test_acc_{name}_median']:.1f}% worst {100 * out[f'test_acc_{name}_worst']:.1f}%")
    _, _, result = _fit_and_score(x, y, xt, yt, labels, Recipe())
    t0 = time.perf_counter()
    qm = quantize(result.params, x)
    from edge.config import Config
    from edge.model.pipeline import metadata
    # the metadata the daemon writes (labels, counts, recipe, metrics, …): the file size is the real one
    meta = metadata(Config(), result, Recipe(), 1.0)
    data = write_model(qm, meta)
    out["export_s"] = time.perf_counter() - t0
    out["model_bytes"] = len(data)
    clf = Classifier(data)
    q = clf.predict_batch(xt)
    f = net.forward(result.params, net.normalize(xt))
    out["int8_argmax_agreement"] = float(np.mean(q.argmax(1) == f.argmax(1)))
    out["int8_max_prob_diff"] = float(np.abs(q - f).max())
    out["int8_test_acc"] = float(np.mean(q.argmax(1) == yt))
    us, runtime = classify_us(data, xt, 1000 if quick else 5000)
    out[f"classify_us_median_{runtime.replace('-', '_')}"] = us
    peer = bench_dir / PEER_MODEL
    if peer.is_file():
        ours_us, peer_us = classify_us_interleaved(data, peer.read_bytes(), xt, 1000 if quick else 5000)
        out["classify_us_interleaved_ours"], out["classify_us_interleaved_tf_converter"] = ours_us, peer_us
        out["classify_ratio_vs_tf_converter"] = ours_us / peer_us
    progress("  training 1,500 windows with the background bank (train + calibrate + export) ...")
    out.update(train_with_bank_s(x, y, labels, repeats=1 if quick else 3))
    progress("  peak RSS of `edge-slider train` ...")
    out["train_cli_peak_rss_mb"] = peak_rss_of_train_cli(bench_dir)
    return out
