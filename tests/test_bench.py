"""The benchmark's plumbing still runs (figures are never asserted here: the bench reports them)."""

import numpy as np

from edge.bench import ANCHORS, decision_latency_hops, format_table, measure_frontend
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
