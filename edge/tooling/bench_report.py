"""The bench's table: each figure beside its anchor, and where the seed data is found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: (figure key, anchor text) — from shared/bench/README.md and the issues' targets.
ANCHORS = {
    "frontend_us_median": "≤ 60 µs target (0.26% of the 23.2 ms hop)",
    "classify_us_median_litert": "TF-converter int8: 7.5–7.8 µs (LiteRT, 1 thread)",
    "classify_us_median_tflite_runtime": "tflite-runtime ~30 µs per invoke",
    "pipeline_us_median": "≤ 230 µs target (1% of the hop)",
    "train_s_default_median": "≤ 0.5 s target",
    "train_s_codelab_median": "Keras 1.58 s, TF.js cpu 17.5 s, wasm 13.0 s",
    "test_acc_default_median": "target ≥ 98.5% (TF.js 97.5%, Keras 95.7% codelab recipe)",
    "test_acc_default_worst": "target ≥ 97% (TF.js 93.0%, Keras 88.3%)",
    "test_acc_codelab_median": "TF.js 97.5%, Keras 95.7%",
    "test_acc_codelab_worst": "TF.js 93.0%, Keras 88.3%",
    "model_bytes": "TF converter: 6,240 B (float I/O)",
    "classify_ratio_vs_tf_converter": "≤ 1 target (same process, interleaved; issue 12 measured 0.8×)",
    "classify_us_interleaved_ours": "≤ 20 µs target (full call, LiteRT)",
    "train_s_1500_with_bank_median": "≤ 3 s target (1,500 windows + the bank; a Pi is ~4× slower)",
    "int8_max_prob_diff": "target ≤ 0.05 vs float",
    "int8_argmax_agreement": "target ≥ 99% vs float",
    "false_moves_per_min_talk_synthetic_noise": "codelab way: noise class without real talk",
    "false_moves_per_min_talk_taught_noise": "noise class taught with other voices' talk",
    "decision_latency_hops_max": "≤ 1 hop after the first window holding the onset",
    "detection_latency_hops_left_max": "the model alone (first detection), before 2-of-3 smoothing",
    "detection_latency_hops_right_max": "the model alone (first detection), before 2-of-3 smoothing",
    "decision_unsmoothed_latency_hops_left_max": "listen.smooth_k = smooth_n = 1",
    "decision_unsmoothed_latency_hops_right_max": "listen.smooth_k = smooth_n = 1",
    "telemetry_us_per_hop_median_10hz": "≤ 20 µs target (predictions at 10 Hz, real-time pace)",
    "rss_mb_daemon_subprocess": "≤ 60 MB target (`run --simulate`, no MQTT)",
    "startup_to_first_decision_s": "≤ 2 s target",
    "overruns_60s_realtime": "0 target",
    "overruns_during_training": "0 target",
}


def format_table(figures: dict[str, Any]) -> str:
    rows = [("figure", "edge-slider", "anchor")]
    for key, value in figures.items():
        if isinstance(value, (list, dict)):
            continue
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        if isinstance(value, float) and ("acc" in key) and value <= 1.0:
            shown = f"{100 * value:.1f}%"
        rows.append((key, shown, ANCHORS.get(key, "")))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows)


def default_bench_dir() -> Path | None:
    """$EDGE_SLIDER_BENCH_DIR, else the seed data a checkout ships in tests/data (the same files as the
    team's shared/bench, which a fresh clone does not have), else ../shared/bench."""
    env = os.environ.get("EDGE_SLIDER_BENCH_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parents[2]
    candidates += [here / "tests" / "data", here.parent / "shared" / "bench", Path.cwd().parent / "shared" / "bench"]
    for c in candidates:
        if (c / "seed-train.npz").is_file():
            return c
    return None
