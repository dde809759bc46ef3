"""The collection gate: the quiet between repetitions is not stored as the sound."""

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.spectrogram import frames_db, window_level_db, window_levels_db, windows_from_frames
from edge.teach.collect import HoldCollector, gate_windows
from edge.config import CollectSettings


def windows_of(script, seed=0, **kw):
    signal, onsets = synth.render(script, seed=seed, **kw)
    return windows_from_frames(frames_db(signal)), onsets


def window_has_sound(i, onsets, hop=1024, span=4096, audible_s=0.05):
    """Does window i overlap the audible part of a sound? (A snap decays within ~50 ms.)"""
    start, end = i * hop / 44100, (i * hop + span) / 44100
    return any(o.start < end and o.start + min(o.duration, audible_s) > start for o in onsets)


def test_snaps_with_gaps_keep_only_windows_with_the_snap():
    windows, onsets = windows_of(", ".join(["gap:0.5", "snap"] * 8) + ", gap:0.5")
    result = gate_windows(CollectSettings(), "left", True, windows)
    assert 0 < len(result.sound) < len(windows) / 2
    levels = window_levels_db(windows)
    kept = levels >= result.threshold_db
    near = np.array([window_has_sound(i, onsets, audible_s=0.2) for i in range(len(windows))])
    onset = np.array([window_has_sound(i, onsets, audible_s=0.02) for i in range(len(windows))])
    # Every kept window is near a snap (its tail rings ~0.1 s); nearly every window with an onset is kept.
    assert near[kept].all()
    assert kept[onset].mean() > 0.8
    assert len(result.sound) + len(result.quiet) == len(windows)


def test_codelab_way_without_gate_labels_the_quiet_too():
    windows, _ = windows_of(", ".join(["gap:0.5", "snap"] * 8))
    result = gate_windows(CollectSettings(gate=False), "left", True, windows)
    assert len(result.sound) == len(windows) and len(result.quiet) == 0


def test_background_class_is_never_gated():
    windows, _ = windows_of("gap:2, babble:1")
    result = gate_windows(CollectSettings(), "noise", False, windows)
    assert len(result.sound) == len(windows)


def test_continuous_whistle_uses_the_ambient_floor_from_before_the_press():
    quiet, _ = windows_of("gap:1", seed=1)
    ambient = window_levels_db(quiet)
    windows, _ = windows_of("whistle:8", seed=2)
    c = HoldCollector(CollectSettings(), "right", True, 1000, ambient_levels=ambient)
    for w in windows:
        c.add(w, window_level_db(w))
    result = c.finish()
    assert len(result.sound) >= 0.9 * len(windows)
    # Without the ambient floor, the hold's own 20th percentile is the whistle itself.
    assert len(gate_windows(CollectSettings(), "right", True, windows).sound) < 0.9 * len(windows)


def test_gate_is_relative_to_the_holds_floor_not_absolute():
    loud, _ = windows_of(", ".join(["gap:0.5", "snap"] * 6), seed=3, gain_db=18)
    soft, _ = windows_of(", ".join(["gap:0.5", "snap"] * 6), seed=3, gain_db=-18)
    a = gate_windows(CollectSettings(), "left", True, loud)
    b = gate_windows(CollectSettings(), "left", True, soft)
    assert abs(len(a.sound) - len(b.sound)) <= 3
    assert a.floor_db - b.floor_db > 30


def test_hold_longer_than_limit_is_truncated():
    c = HoldCollector(CollectSettings(), "left", True, 5)
    w = np.zeros((3, 232), dtype=np.float32)
    assert all(c.add(w, 0.0) for _ in range(5))
    assert not c.add(w, 0.0)
    assert c.finish().truncated


def test_digital_silence_does_not_set_the_floor():
    """Zeros from an idle stream (−160 dB clamp) before the sound must not make every window 'loud'."""
    from edge.audio.spectrogram import frames_db, windows_from_frames
    from edge.audio import synth
    sig = synth.render("gap:0.3, snap, gap:0.5, snap, gap:0.3", seed=4)[0]
    x = np.concatenate([np.zeros(44100, np.float32), sig])
    windows = windows_from_frames(frames_db(x))
    result = gate_windows(CollectSettings(), "left", True, windows)
    assert result.floor_db > -140
    assert 4 <= len(result.sound) <= 20


def _with_digital_silence(script, seed=5):
    sig = synth.render(script, seed=seed)[0]
    x = np.concatenate([np.zeros(44100, np.float32), sig, np.zeros(22050, np.float32)])
    return windows_from_frames(frames_db(x))


def _is_zeros(windows):
    return (windows.reshape(len(windows), -1).max(axis=1) <= -150) if len(windows) else np.zeros(0, bool)


def test_digital_silence_is_stored_under_no_class_not_even_the_background():
    """Exact zeros (a muted stream) are no room: a 'noise' hold of them taught the model nothing real."""
    windows = _with_digital_silence("gap:1, babble:1")
    settings = CollectSettings()
    for label, gated in (("noise", False), ("left", True)):
        groups = gate_windows(settings, label, gated, windows).to_store(settings, "noise")
        stored = np.concatenate([w for _, w in groups])
        assert len(stored) and not _is_zeros(stored).any(), label
    ungated = gate_windows(CollectSettings(gate=False), "left", True, windows).to_store(settings, "noise")
    assert not _is_zeros(np.concatenate([w for _, w in ungated])).any()


def test_one_collection_stores_at_most_the_cap_first_windows_in_time_order():
    from edge.teach.collect import HoldCollector
    windows, _ = windows_of(", ".join(["gap:0.5", "snap"] * 8))
    settings = CollectSettings(max_windows_per_collection=50)
    result = gate_windows(settings, "left", True, windows)
    groups = result.to_store(settings, "noise")
    assert sum(len(w) for _, w in groups) == 50
    # The first 50 storable windows of the hold, whichever class the gate gave them.
    full = gate_windows(CollectSettings(), "left", True, windows).to_store(CollectSettings(), "noise")
    first = sorted([*result.sound_at, *result.quiet_at])[:50]
    assert sorted(np.concatenate([result.sound_at[:len(groups[0][1])], result.quiet_at[:len(groups[1][1])]])) == first
    assert np.array_equal(groups[0][1], full[0][1][:len(groups[0][1])])
    assert result.skipped(settings, "noise") == len(windows) - 50


@pytest.mark.parametrize("rate,cap", [(44100, 4000), (48000, 4000), (44100, 60)])
def test_collect_file_streams_and_stores_exactly_what_one_hold_of_the_file_stores(tmp_path, rate, cap):
    """Two passes over the file (levels for the floor, then the kept windows) = the in-memory hold."""
    from edge.audio.wavfile import open_wav, read_wav, write_wav
    from edge.teach.collect import collect_file
    from edge.teach.store import ExampleStore
    import soxr
    sig = synth.render(", ".join(["gap:0.4", "snap", "gap:0.3", "whistle"] * 4), seed=7)[0]
    if rate != 44100:   # a 48 kHz file: resampled back while streaming
        sig = soxr.resample(sig, 44100, rate).astype(np.float32)
    sig = np.concatenate([np.zeros(rate // 2, np.float32), sig])
    wav = tmp_path / "hold.wav"
    write_wav(wav, sig, rate=rate)
    settings = CollectSettings(max_windows_per_collection=cap)
    windows = windows_from_frames(frames_db(read_wav(wav)))
    expected = gate_windows(settings, "left", True, windows).to_store(settings, "noise")
    with ExampleStore(tmp_path / "s.sqlite") as store:
        r = collect_file(store, settings, open_wav(wav), "left", True, "noise", "wav", "s1", 1024, -160.0)
        x, y, labels = store.load(("left", "noise"))
    assert r.windows == len(windows) and r.silent > 0
    assert [r.stored, r.background] == [len(w) for _, w in expected]
    assert np.array_equal(x[y == 0], expected[0][1]) and np.array_equal(x[y == 1], expected[1][1])
    assert (r.skipped > 0) == (cap < len(windows) - r.silent)


def test_a_file_that_shrinks_between_the_two_passes_stores_nothing(tmp_path):
    from edge.teach.collect import collect_file
    from edge.errors import WavError
    from edge.teach.store import ExampleStore
    sig = synth.render(", ".join(["gap:0.4", "snap"] * 6), seed=8)[0]

    class Shrinking:
        path, calls = "shrinking.wav", 0

        def blocks(self):
            self.calls += 1
            yield sig if self.calls == 1 else sig[:len(sig) // 3]

    with ExampleStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(WavError, match="changed while"):
            collect_file(store, CollectSettings(), Shrinking(), "left", True, "noise", "wav", "s", 1024, -160.0)
        assert len(store) == 0
