"""The decision policy: threshold, k-of-n smoothing, refractory time, continuous vs per_sound."""

import dataclasses

import numpy as np
import pytest

from edge.config import DEFAULT_CLASSES, ListenSettings
from edge.listen.decision import DecisionPolicy

HOP_S = 1024 / 44100
LEFT, RIGHT, NOISE = np.eye(3, dtype=np.float32) * 0.9 + 0.1 / 3


def run(policy, seq, level=None):
    """``level``: one dB value for every hop, or a list; default: loud (−30) when a sound class
    is most probable, quiet (−60) otherwise — as real windows are."""
    acts = []
    for i, p in enumerate(seq):
        if level is None:
            lv = -60.0 if int(np.argmax(p)) == 2 else -30.0
        else:
            lv = level[i] if isinstance(level, list) else level
        v = policy.update(p, lv, i * HOP_S)
        if v.act:
            acts.append((i, v.act))
    return acts


def make(**kw):
    # NOTE: onset gate off here (most tests give every sound one level); its own tests are below.
    base = ListenSettings(threshold=0.75, smooth_k=2, smooth_n=3, refractory_s=0.0, mode="per_sound", onset_db=0.0)
    return DecisionPolicy(dataclasses.replace(base, **kw), DEFAULT_CLASSES)


def test_per_sound_acts_once_per_sound_and_rearms():
    seq = [NOISE] * 3 + [LEFT] * 10 + [NOISE] * 3 + [LEFT] * 4
    assert run(make(), seq) == [(4, "left"), (17, "left")]


def test_continuous_acts_every_hop_while_it_wins():
    seq = [NOISE] + [LEFT] * 5 + [NOISE] * 3
    acts = run(make(mode="continuous"), seq)
    assert [i for i, _ in acts] == [2, 3, 4, 5, 6]


def test_refractory_limits_continuous_rate():
    seq = [LEFT] * 44  # ~1 s
    acts = run(make(mode="continuous", refractory_s=0.25), seq)
    gaps = np.diff([i * HOP_S for i, _ in acts])
    assert len(acts) == 4 and np.all(gaps >= 0.25 - 1e-9)


def test_refractory_suppresses_a_second_sound_too_soon():
    seq = [LEFT] * 3 + [NOISE] * 3 + [LEFT] * 3
    assert len(run(make(refractory_s=1.0), seq)) == 1
    assert len(run(make(refractory_s=0.0), seq)) == 2


def test_threshold_and_level_gate():
    weak = np.array([0.6, 0.2, 0.2], dtype=np.float32)
    assert run(make(), [weak] * 5) == []
    assert run(make(threshold=0.5), [weak] * 5) == [(1, "left")]
    assert run(make(min_level_db=-40.0), [LEFT] * 5, level=-60.0) == []


def test_single_hop_blip_is_smoothed_away():
    seq = [NOISE, LEFT, NOISE, RIGHT, NOISE, NOISE]
    assert run(make(), seq) == []
    assert run(make(smooth_k=1, smooth_n=1), seq) == [(1, "left"), (3, "right")]


def test_background_never_acts():
    assert run(make(smooth_k=1, smooth_n=1), [NOISE] * 10) == []


@pytest.mark.parametrize("mode", ["continuous", "per_sound"])
def test_first_decision_within_one_hop_of_first_detection(mode):
    # Decision latency: k=2 → the hop after the first detecting hop.
    seq = [NOISE] * 5 + [RIGHT] * 5
    acts = run(make(mode=mode), seq)
    assert acts[0] == (6, "right")


def test_per_sound_rearms_only_after_a_quiet_gap():
    """A whistle whose fading tail looks like another class is still one sound (measured failure)."""
    right = np.array([0.02, 0.96, 0.02], dtype=np.float32)
    seq = [NOISE] * 3 + [right] * 4 + [NOISE] + [LEFT] * 4 + [NOISE] * 3 + [LEFT] * 4
    acts = run(make(refractory_s=0.0), seq)
    assert [label for _, label in acts] == ["right", "left"]
    assert acts[1][0] >= 3 + 4 + 1 + 4 + 3


def test_per_sound_needs_the_level_to_fall_before_a_second_step():
    """A wobble inside one loud sound (3 weak hops, level unchanged) is not a new sound."""
    weak = np.array([0.5, 0.2, 0.3], dtype=np.float32)
    seq = [NOISE] * 3 + [LEFT] * 6 + [weak] * 3 + [LEFT] * 6 + [NOISE] * 3 + [LEFT] * 4
    level = [-60.0] * 3 + [-30.0] * 15 + [-60.0] * 3 + [-30.0] * 4
    acts = run(make(), seq, level)
    assert [i for i, _ in acts] == [4, 22]
    # with the level rule off, the wobble counts as a gap: three steps
    assert len(run(make(rearm_drop_db=0.0), seq, level)) == 3


def test_per_sound_rearms_after_a_second_even_without_a_level_drop():
    seq = [LEFT] * 3 + [NOISE] * 50 + [LEFT] * 3
    assert len(run(make(), seq, -30.0)) == 2          # > 1 s without a detection
    assert len(run(make(), [LEFT] * 3 + [NOISE] * 20 + [LEFT] * 3, -30.0)) == 1


def test_per_sound_one_whistle_whose_probability_wobbles_steps_once():
    """Measured: 5 of ~78 whistles stepped twice, exactly refractory_s apart. A wobble (3 unsure
    hops) where the whistle's level also dips re-armed the policy mid-sound; the detections that
    went on were then blocked only until the refractory time ran out — and acted right then."""
    weak = np.array([0.5, 0.2, 0.3], dtype=np.float32)
    seq = [NOISE] * 3 + [LEFT] * 6 + [weak] * 3 + [LEFT] * 30 + [NOISE] * 3
    level = [-60.0] * 3 + [-30.0] * 6 + [-42.0] * 3 + [-30.0] * 30 + [-60.0] * 3
    acts = run(make(refractory_s=0.3), seq, level)
    assert [i for i, _ in acts] == [4], acts
    # a second whistle after a real gap still steps (the policy re-arms once the sound is over)
    seq2 = seq + [NOISE] * 10 + [LEFT] * 6
    level2 = level + [-60.0] * 10 + [-30.0] * 6
    assert len(run(make(refractory_s=0.3), seq2, level2)) == 2


def test_decision_score_is_the_detections_not_the_current_hops():
    """A continuous-mode action on a hop whose own top score is 0.617 (under the 0.75 threshold):
    the score published with the decision is the one of the detections that made it."""
    weak = np.array([0.617, 0.2, 0.183], dtype=np.float32)
    strong = np.array([0.8, 0.1, 0.1], dtype=np.float32)
    policy = make(mode="continuous")
    verdicts = [policy.update(p, -30.0, i * HOP_S) for i, p in enumerate([NOISE, LEFT, strong, weak])]
    acted = [v for v in verdicts if v.act]
    assert [v.act for v in acted] == ["left", "left"]
    assert verdicts[3].score == pytest.approx(0.617) and verdicts[3].act == "left"
    for v in acted:
        assert v.act_score >= 0.75, v
    assert verdicts[3].act_score == pytest.approx(float(LEFT[0]))  # the best detection in the window


def _after_talk(talk_hops: int, talk_db: float, sound_db: float, quiet: int = 0, swing_db: float = 6.0):
    """``talk_hops`` of loud background that is not a taught class, its level jumping ``swing_db``
    from hop to hop as talk's does, ``quiet`` hops at −60 dB, then a left sound (steady)."""
    seq = [NOISE] * talk_hops + [NOISE] * quiet + [LEFT] * 8 + [NOISE] * 10
    talk = [talk_db - swing_db * (i % 2) for i in range(talk_hops)]
    level = talk + [-60.0] * quiet + [sound_db] * 8 + [-60.0] * 10
    return seq, level


def test_onset_gate_suppresses_a_sound_no_louder_than_the_talk_before_it():
    seq, level = _after_talk(40, -27.0, -30.0)
    assert run(make(onset_db=12.0), seq, level) == []
    assert run(make(onset_db=0.0), seq, level) == [(41, "left")]
    # the whole sound is suppressed, not acted on later in it
    assert run(make(onset_db=12.0), seq[:40] + [LEFT] * 30, level[:40] + [-30.0] * 30) == []


def test_onset_gate_passes_a_sound_that_rises_out_of_quieter_sound():
    seq, level = _after_talk(40, -45.0, -30.0)          # 15 dB over the talk before it (−45/−51)
    assert run(make(onset_db=12.0), seq, level) == [(41, "left")]
    seq, level = _after_talk(40, -43.0, -30.0)          # 13 dB over the talk's median (its louder hops)
    assert run(make(onset_db=12.0), seq, level) == [(41, "left")]
    assert run(make(onset_db=15.0), seq, level) == []
    seq, level = _after_talk(40, -27.0, -30.0, quiet=30)  # the talk stopped 0.7 s before
    assert run(make(onset_db=12.0), seq, level) == [(71, "left")]


def test_onset_gate_passes_one_steady_sound_found_late():
    """A whistle the model recognises only 0.7 s in: the half second before was as loud, but steady."""
    seq = [NOISE] * 10 + [NOISE] * 30 + [LEFT] * 8 + [NOISE] * 10
    level = [-60.0] * 10 + [-30.0] * 38 + [-60.0] * 10
    assert run(make(onset_db=12.0), seq, level) == [(41, "left")]
    wobbly = [-60.0] * 10 + [-30.0 - 2.0 * (i % 2) for i in range(38)] + [-60.0] * 10
    assert run(make(onset_db=12.0), seq, wobbly) == []


def test_onset_gate_passes_at_the_start_of_a_stream_and_after_reset():
    policy = make(onset_db=12.0)
    assert run(policy, [LEFT] * 5, -30.0) == [(1, "left")]
    policy.reset()
    assert run(policy, [LEFT] * 5, -30.0) == [(1, "left")]


def test_onset_gate_leaves_continuous_mode_alone():
    seq, level = _after_talk(40, -27.0, -30.0)
    acts = run(make(onset_db=12.0, mode="continuous"), seq, level)
    assert acts and acts[0] == (41, "left")


def test_onset_gate_is_on_by_default():
    seq, level = _after_talk(40, -27.0, -30.0)
    assert ListenSettings().onset_db > 0
    assert run(DecisionPolicy(ListenSettings(), DEFAULT_CLASSES), seq, level) == []
