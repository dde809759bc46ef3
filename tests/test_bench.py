"""The benchmark's plumbing still runs (figures are never asserted here: the bench reports them)."""

import numpy as np

from edge.tooling.bench import decision_latency_hops, measure_frontend
from edge.tooling.bench_report import ANCHORS, format_table
from edge.audio import synth
from edge.events import DecisionMade


def test_frontend_figures_and_table():
    figures = measure_frontend(200)
    assert set(figures) == {"frontend_us_median", "frontend_us_p99", "frontend_pct_of_hop"}
    table = format_table({**figures, "test_acc_default_median": 0.99, "nested": {"x": 1}})
    assert "frontend_us_median" in table and ANCHORS["frontend_us_median"] in table and "99.0%" in table
    assert "nested" not in table


def test_decision_latency_counts_hops_from_the_first_window_holding_the_onset():
    onsets = [synth.Onset("snap", 1.0, 0.25)]
    s = 44100
    k = -(-(s - 2047) // 1024)                     # first frame whose window holds sample 44100
    t_first = (k * 1024 + 2048) / 44100
    decisions = [DecisionMade(t_first + 2 * 1024 / 44100, "left", 0.9, 4.9)]
    assert decision_latency_hops(decisions, onsets, 1024) == [2.0]
    assert decision_latency_hops([], onsets, 1024) == []
    assert np.isfinite(t_first)


def test_latency_breakdown_separates_the_model_from_the_smoothing():
    """A sound detected from the 2nd hop on: the model is 1 hop late, 2-of-3 smoothing adds one more,
    and the unsmoothed policy acts on the first detection."""
    from edge.tooling.bench import latency_breakdown
    from edge.config import Config
    from edge.listen.decision import DecisionPolicy
    from edge.events import PredictionMade
    cfg = Config()
    onsets = [synth.Onset("snap", 1.0, 0.25)]
    k = -(-(44100 - 2047) // 1024)
    labels = [c.name for c in cfg.classes]
    policy = DecisionPolicy(cfg.listen, cfg.classes)
    preds, decisions = [], []
    for i in range(12):
        t = ((k + i) * 1024 + 2048) / 44100
        label = "left" if 1 <= i <= 6 else "noise"
        probs = {c: (0.95 if c == label else 0.05 / (len(labels) - 1)) for c in labels}
        preds.append(PredictionMade(t, label, 0.95, probs, -50.0))
        if policy.update(np.array([probs[c] for c in labels]), -50.0, t).act:
            decisions.append(DecisionMade(t, label, 0.95, 4.9))
    out = latency_breakdown(cfg, decisions, preds, onsets)
    assert out["detection_latency_hops_left"] == [1.0]
    assert out["decision_latency_hops_left"] == [2.0]
    assert out["decision_unsmoothed_latency_hops_left"] == [1.0]
    assert out["decision_latency_hops_right"] == [] and out["detection_latency_hops_right_max"] is None


def test_bench_data_defaults_to_the_copies_in_tests_data(monkeypatch, tmp_path):
    """A fresh clone has no ../shared/bench: the bench must find the seed data it ships."""
    from pathlib import Path
    from edge.tooling.bench_report import default_bench_dir
    monkeypatch.delenv("EDGE_SLIDER_BENCH_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_bench_dir() == Path(__file__).resolve().parent / "data"
    (tmp_path / "seed-train.npz").write_bytes(b"")
    monkeypatch.setenv("EDGE_SLIDER_BENCH_DIR", str(tmp_path))
    assert default_bench_dir() == tmp_path


def test_machine_says_when_qemu_user_runs_the_bench():
    """Emulated seconds must never be reported as a Pi's: qemu-user shows the host's /proc/cpuinfo."""
    from edge.tooling.machine import machine
    x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2\n"
    pi4 = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nModel\t: Raspberry Pi 4\n"
    assert machine("aarch64", x86)["machine"] == "aarch64 (emulated by qemu-user on x86_64)"
    assert machine("armv7l", x86)["machine"] == "armv7l (emulated by qemu-user on x86_64)"
    assert machine("aarch64", pi4)["machine"] == "aarch64 (native)"
    assert machine("x86_64", x86) == {"machine": "x86_64 (native)", "cpu": "AMD EPYC"}


def test_the_counted_loop_runs_the_real_listening_pipeline(tmp_path):
    """`bench --instructions` counts this loop under valgrind; it must drive the real device."""
    from edge.tooling.demo import train_demo_model
    from edge.tooling.hop_cost import run_hops
    train_demo_model(tmp_path)
    run_hops(tmp_path, 40)
