"""The shipped background bank and what training does with it."""

import hashlib
import json

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.spectrogram import frames_db, window_levels_db, windows_from_frames
from edge.teach.collect import gate_windows
from edge.config import Config
from edge.model import calibrate
from edge.model import network as net
from edge.model.bank import BANK_PATH, levels_db, load_banks, power_add_db
from edge.model.train import Recipe, split_by_group, train


def test_shipped_bank_matches_its_manifest_and_fits_the_wheel():
    manifest = json.loads(BANK_PATH.with_suffix(".json").read_text())
    with np.load(BANK_PATH) as z:
        frames = z["frames"]
    assert frames.dtype == np.uint8 and frames.shape == (manifest["frames"], 232)
    assert hashlib.sha256(frames.tobytes()).hexdigest() == manifest["sha256"]
    assert BANK_PATH.stat().st_size <= 20e6
    names = {s["name"] for s in manifest["sources"]}
    assert {"speech", "speech_tts", "instruments", "music_fx", "game_fx", "game_fx2", "ambience"} <= names
    # nothing reserved for held-out testing went in
    used = " ".join(f for s in manifest["sources"] for f in s["files"])
    for reserved in ("sounds/alsa", "freedesktop", "hydrogen", "sound-icons", "frozen-bubble", "pingus",
                     "lbreakout", "espeak-ng:en"):
        assert reserved not in used
    # nor anything the room bench plays: its figures are for sounds the model never learnt from
    from edge.tooling.roombench.sources import ESPEAK_LANGS, HEDGEWARS, KTUBERLING, SONIC_PI, SONIC_PREFIXES
    files = [f for s in manifest["sources"] for f in s["files"]]
    assert not [f for f in files if f.startswith((str(HEDGEWARS), str(KTUBERLING)))]
    assert not [f for f in files if f.startswith(str(SONIC_PI)) and f.rsplit("/", 1)[1].startswith(SONIC_PREFIXES)]
    assert not {f"espeak-ng:{lang}" for lang in ESPEAK_LANGS} & set(files)


def test_training_and_calibration_parts_share_no_clip():
    tr, cal = load_banks()
    assert len(tr) > 3 * len(cal) * 0.8 and len(cal) > 5000
    assert not set(np.unique(tr.clip_of_start)) & set(np.unique(cal.clip_of_start))
    w = tr.sample(np.random.default_rng(0), 8)
    assert w.shape == (8, 3, 232) and -130 < w.min() and w.max() < 0


def test_power_add_is_the_sum_of_powers():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-140, 0, 5000).astype(np.float32), rng.uniform(-140, 0, 5000).astype(np.float32)
    exact = 10 * np.log10(10 ** (a / 10.0) + 10 ** (b / 10.0))
    assert np.abs(power_add_db(a, b) - exact).max() < 0.03
    w = rng.uniform(-100, -20, (4, 3, 232)).astype(np.float32)
    assert np.allclose(levels_db(w), window_levels_db(w), atol=1e-3)


def test_validation_holds_out_whole_holds():
    y = np.array([0] * 30 + [1] * 30)
    groups = np.array([f"a{i // 10}" for i in range(30)] + [f"b{i // 10}" for i in range(30)], dtype=object)
    tr, va = split_by_group(y, groups, 0.34, np.random.default_rng(0))
    assert not set(groups[tr]) & set(groups[va])
    assert {g[0] for g in groups[va]} == {"a", "b"} and len(va) == 20


def _synthetic_room():
    """Snaps = class 0, whistles = class 1, quiet + babble = class 2, as windows."""
    xs, ys = [], []
    for label, script in ((0, "gap:0.3, snap, gap:0.3, snap, gap:0.3, snap, gap:0.3, snap"),
                          (1, "gap:0.3, whistle, gap:0.3, whistle"), (2, "gap:1, babble:3, gap:1")):
        w = windows_from_frames(frames_db(synth.render(script, seed=label)[0]))
        if label < 2:
            w = gate_windows(Config().collect, "x", True, w).sound     # what a hold keeps
        xs.append(w)
        ys += [label] * len(w)
    return np.concatenate(xs), np.array(ys)


def test_the_bank_lowers_false_moves_on_sounds_nobody_taught():
    """Trained on a synthetic room only, the model takes real talk and music for the taught sounds;
    the same training with the bank mixed in moves far less on the bank's *calibration* clips (never
    trained on)."""
    x, y = _synthetic_room()
    labels = ("left", "right", "noise")
    tr, cal = load_banks()
    streams = calibrate.negative_streams(cal, x[y == 2], [])
    listen = Config().listen

    def false_per_min(params):
        n = hops = 0
        for s in streams:
            p, lv = calibrate.scored(params, s)
            n += sum(calibrate.moves(p, lv, c, 0.75, 2, 3, -100, 1024 / 44100) for c in (0, 1))
            hops += len(p)
        return n / (hops * 1024 / 44100 / 60)

    recipe = Recipe(epochs=8, seed=3, min_examples=5)
    plain = train(x, y, labels, recipe)
    banked = train(x, y, labels, Recipe(epochs=8, seed=3, min_examples=5, bank_ratio=1.0), bank=tr, background=2)
    before, after = false_per_min(plain.params), false_per_min(banked.params)
    assert after < 0.5 * before, (before, after)
    # and it still knows its own sounds
    acc = np.mean(net.forward(banked.params, net.normalize(x)).argmax(1) == y)
    assert acc > 0.9


def test_a_bank_class_trains_one_output_more_and_the_model_file_adds_it_to_the_background():
    """``bank_class``: bank windows train an "unknown" output; every prediction — numpy, the int8
    simulation and the .tflite in the installed runtime — has one probability per label, the unknown
    one added to the background's, and the acting classes' probabilities are the softmax's own."""
    from edge.model.classifier import Classifier
    from edge.model.pipeline import metadata
    from edge.model.quantize import quantize, simulate
    from edge.model.tflite_writer import write_model
    x, y = _synthetic_room()
    labels = ("left", "right", "noise")
    tr, cal = load_banks()
    r = Recipe(epochs=4, seed=3, min_examples=5, bank_ratio=1.0, bank_class=True)
    result = train(x, y, labels, r, bank=tr, background=2)
    p = result.params
    assert p.num_outputs == 4 and p.num_classes == 3 and p.unknown_into == 2
    bank_x = net.normalize(cal.sample(np.random.default_rng(1), 400) + 6.0)
    raw = net.softmax(net.logits_and_activations(p, bank_x)[1])
    folded = net.forward(p, bank_x)
    assert folded.shape == (400, 3) and np.allclose(folded.sum(1), 1, atol=1e-5)
    assert np.allclose(folded[:, :2], raw[:, :2]) and np.allclose(folded[:, 2], raw[:, 2] + raw[:, 3])
    assert np.mean(raw.argmax(1) == 3) > 0.5        # the bank's sounds went to their own class
    qm = quantize(p, x)
    data = write_model(qm, metadata(Config(), result, r, 1.0))
    clf = Classifier(data, expect_hop=1024)
    assert clf.labels == labels
    q = clf.predict_batch(x)
    assert q.shape == (len(x), 3) and np.abs(q - simulate(qm, net.normalize(x))).max() <= 0.02
    assert np.mean(q.argmax(1) == y) > 0.9


def test_the_background_class_is_held_out_by_windows_not_by_holds():
    """Each background hold is another kind of sound: none may miss the validated epochs whole."""
    y = np.array([0] * 30 + [1] * 30)
    groups = np.array([f"a{i // 10}" for i in range(30)] + [f"b{i // 10}" for i in range(30)], dtype=object)
    tr, va = split_by_group(y, groups, 0.34, np.random.default_rng(0), background=1)
    assert not set(groups[tr][y[tr] == 0]) & set(groups[va][y[va] == 0])    # sound: whole holds
    assert set(groups[tr][y[tr] == 1]) == {"b0", "b1", "b2"}                  # background: every hold trains
