"""The room benchmark's scorer, its scenario generator's determinism, and one short end-to-end run."""

import json

import numpy as np
import pytest

from edge.tooling.roombench import score
from edge.tooling.roombench.scenarios import Event, Sizes, build_scenario, make_household
from edge.tooling.roombench.sources import Sources
from edge.tooling.roombench.score import Decision

TAUGHT = ("left", "right")
EVENTS = [Event(1.0, 1.5, "left", "a"), Event(3.0, 3.4, "right", "b"), Event(5.0, 5.6, "left", "c"),
          Event(7.0, 8.0, "talk", "distractor")]
DURATION = 60.0


def test_perfect_decisions_give_recall_one_and_no_false_moves():
    perfect = [Decision(e.onset + 0.1, e.label) for e in EVENTS if e.label in TAUGHT]
    s = score.score_stream(perfect, EVENTS, DURATION, TAUGHT)
    assert s["recall"] == {"left": 1.0, "right": 1.0} and s["macro_recall"] == 1.0
    assert s["false_moves"] == 0 and s["false_per_min"] == 0 and s["cross_fire"] == 0
    assert s["latency_median_s"] == pytest.approx(0.1)


def test_a_decision_up_to_a_quarter_second_after_the_offset_still_counts():
    late = [Decision(1.5 + 0.24, "left"), Decision(3.4 + 0.3, "right")]
    s = score.score_stream(late, EVENTS, DURATION, TAUGHT)
    assert s["recall"] == {"left": 0.5, "right": 0.0}
    assert s["false_moves"] == 1        # the right one came too late: a move outside every event


def test_no_decisions_or_only_noise_gives_recall_zero():
    for decisions in ([], [Decision(e.onset + 0.1, "noise") for e in EVENTS]):
        s = score.score_stream(decisions, EVENTS, DURATION, TAUGHT)
        assert s["recall"] == {"left": 0.0, "right": 0.0} and s["macro_recall"] == 0.0
        assert s["cross_fire"] == 0


def test_swapped_labels_are_all_cross_fire():
    swapped = [Decision(e.onset + 0.1, "right" if e.label == "left" else "left") for e in EVENTS if e.label in TAUGHT]
    s = score.score_stream(swapped, EVENTS, DURATION, TAUGHT)
    assert s["macro_recall"] == 0.0 and s["cross_fire"] == 3 and s["false_moves"] == 0


def test_false_decisions_at_most_0_2_s_apart_are_one_move():
    burst = [Decision(t, "left") for t in (10.0, 10.15, 10.3, 10.45)]       # a chain: each ≤ 0.2 s after the last
    apart = [Decision(20.0, "right"), Decision(20.25, "left")]              # 0.25 s: two moves
    s = score.score_stream(burst + apart, EVENTS, DURATION, TAUGHT)
    assert s["false_moves"] == 3
    background = DURATION - (0.5 + 0.25) - (0.4 + 0.25) - (0.6 + 0.25)
    assert s["false_per_min"] == pytest.approx(3 / (background / 60))
    assert score.merge([1.0, 1.2, 1.41]) == [1.0, 1.41]


def test_blame_names_the_distractor_that_was_playing():
    got = score.blame([7.5, 30.0], EVENTS + [Event(0, 60, "tv", "music/x")], TAUGHT)
    assert got == {"talk": 1, "tv": 1}


def test_replay_runs_the_real_policy_per_threshold():
    from edge.config import Config
    cfg = Config()
    labels = [c.name for c in cfg.classes]
    probs = np.zeros((20, len(labels)))
    probs[:, labels.index("noise")] = 1.0
    probs[5:9] = 0.0
    probs[5:9, labels.index("left")] = 0.8              # 4 hops of "left" at 0.8
    trace = {"t": np.arange(20) * 0.0232, "level_db": np.full(20, -40.0), "probs": probs, "labels": np.array(labels)}
    out = score.replay(trace, cfg.listen, cfg.classes, (0.75, 0.9))
    assert [d.label for d in out[0.75]] == ["left"] and out[0.9] == []


def _small() -> Sizes:
    return Sizes(events_per_class=3, distractors=4, household_chunks=1, chunk_s=20.0)


def _build(tmp_path, name, seed):
    src = Sources(tmp_path / "sources")
    root = tmp_path / f"gen-{seed}"
    sc = build_scenario(src, "snapwhistle", seed, _small(), root)
    house = make_household(src, seed, _small(), root)
    return sc, house


def test_same_seed_gives_the_same_bytes_and_events(tmp_path):
    a, ha = _build(tmp_path / "a", "snapwhistle", 7)
    b, hb = _build(tmp_path / "b", "snapwhistle", 7)      # separate caches: sox and espeak run again
    assert a.test.events == b.test.events and ha[0].events == hb[0].events
    for (la, pa), (lb, pb) in zip(a.holds, b.holds):
        assert la == lb and open(pa, "rb").read() == open(pb, "rb").read()
    assert open(a.test.path, "rb").read() == open(b.test.path, "rb").read()
    assert open(ha[0].path, "rb").read() == open(hb[0].path, "rb").read()
    c, _ = _build(tmp_path / "c", "snapwhistle", 8)
    assert c.test.events != a.test.events


def test_bad_seeds_are_one_line_errors(capsys):
    from edge.cli import main
    assert main(["bench", "--room", "--seeds", "1,x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--seeds" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_quick_room_bench_runs_every_stage(tmp_path, capsys):
    from edge.cli import main
    assert main(["bench", "--room", "--quick", "--json", "--scenario", "snapwhistle", "--work", str(tmp_path)]) == 0
    fig = json.loads(capsys.readouterr().out)
    s = fig["scenarios"]["snapwhistle"]
    assert s["replay_matches_listen"] is True
    assert set(s["best_within"]) == {"0.5", "1", "2", "5"} and len(s["sweep"]) >= len(score.THRESHOLDS)
    run = fig["runs"][0]
    assert sum(run["test"]["events"].values()) == 16 and run["household"]["hours"] == pytest.approx(300 / 3600)
    assert run["model_bytes"] > 1000 and 0 <= s["macro_recall"] <= 1


def test_the_daemon_never_imports_the_room_bench():
    import subprocess
    import sys
    code = ("import sys, edge.service, edge.engine.core, edge.cli.device_cmds, edge.cli.bench_cmds; "
            "print([m for m in sys.modules if m.startswith('edge.tooling.roombench')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_false_moves_are_blamed_on_the_source_package():
    events = [Event(1.0, 2.0, "talk", "espeak/nl/0"), Event(3.0, 4.0, "talk", "hedgewars/Robot/Drat"),
              Event(5.0, 6.0, "effect", "hedgewars/explosion"), Event(7.0, 8.0, "talk", "Robot/Drat")]
    got = score.blame_sources([1.5, 3.5, 5.5, 7.5, 20.0], events, TAUGHT, key=score.family)
    assert got == {"espeak-ng talk": 1, "hedgewars voice": 2, "hedgewars effect": 1, "(tv / room tone)": 1}


def test_each_family_of_takes_is_one_sound(tmp_path):
    """everyday teaches some takes of a family and tests on another: every pair of takes must be the
    same sound (loud-frame spectra within 20 dB rms), as the families of generator v5 are — v4's
    perc_bell / perc_bell2 were two bells 44.6 dB apart and the device found 0-4 of 30."""
    from edge.audio.spectrogram import frames_db
    from edge.tooling.roombench.families import BELL_TAKES, CHIME_FAMILIES, KNOCK_FAMILIES, _chime

    src = Sources(tmp_path / "sources")

    def shape(x):
        fr = frames_db(np.pad(x[: int(1.5 * 44100)], (0, 4096)))     # a stroke can be shorter than a frame
        loud = fr[fr.max(1) > fr.max() - 20].mean(0)
        return loud - loud.max()

    def spread(takes):
        s = [shape(t) for t in takes]
        return max(float(np.sqrt(np.mean((a - b) ** 2))) for i, a in enumerate(s) for b in s[i + 1:])

    for fam in KNOCK_FAMILIES + CHIME_FAMILIES:
        for seed in (1, 2):
            takes = [_chime(src, name, seed)(None) for name in fam]
            assert spread(takes) < 20.0, (fam, seed, spread(takes))
    two_bells = [src.sonic_clip("perc_bell"), src.sonic_clip("perc_bell2")]
    assert spread(two_bells) > 30.0      # the check tells two sounds apart
    assert spread([_chime(src, BELL_TAKES[0], 1)(None), _chime(src, BELL_TAKES[0], 2)(None)]) > 5.0
