"""What a room does to a taught sound, in the dB-window domain (training and calibration use it)."""

import numpy as np

from edge.model.augment import in_a_room, mix_db, reverb_db
from edge.model.bank import levels_db


def _power(x_db):
    return 10 ** (np.asarray(x_db, np.float64) / 10)


def test_reverb_tail_decays_by_its_rate_and_never_removes_sound():
    x = np.full((1, 3, 232), -120.0, np.float32)
    x[0, 0] = -30.0                                     # a click in the first frame, silence after
    out = reverb_db(x, np.array([[4.0]]), np.array([[-6.0]]))
    # frame 0 also hears the frame before the window (taken as loud as frame 0): 4 dB down, 6 dB below
    assert np.allclose(out[0, 0], 10 * np.log10(_power(-30) * (1 + 10 ** -1.0)), atol=0.01)
    # the click's tail: frame 1 is the click 6 dB below and 4 dB on, frame 2 another 4 dB down
    tail1 = out[0, 1] - x[0, 1]
    assert np.all(tail1 > 70)                          # the tail fills the silence …
    assert np.allclose(out[0, 1] - out[0, 2], 4.0, atol=0.3)   # … and decays 4 dB per hop
    dry = reverb_db(x, np.array([[4.0]]), np.array([[-150.0]]))
    assert np.allclose(dry, x, atol=0.01)              # no wet level: no change
    assert np.all(out >= x - 1e-4)


def test_mix_puts_the_noise_at_the_snr_asked():
    rng = np.random.default_rng(0)
    x = rng.uniform(-60, -30, (50, 3, 232)).astype(np.float32)
    noise = rng.uniform(-90, -50, (50, 3, 232)).astype(np.float32)
    snr = np.full(50, 10.0, np.float32)
    out = mix_db(x, noise, snr)
    added = _power(out) - _power(x)
    ratio = 10 * np.log10(_power(x).mean(axis=(1, 2)) / added.mean(axis=(1, 2)))
    assert np.allclose(ratio, 10.0, atol=0.3)


def test_a_room_changes_each_sound_as_a_whole_and_reproducibly():
    rng = np.random.default_rng(1)
    x = rng.uniform(-70, -30, (40, 3, 232)).astype(np.float32)
    starts = np.array([0, 10, 20, 30])
    noise = rng.uniform(-90, -50, (100, 3, 232)).astype(np.float32)
    a, b = in_a_room(x, starts, noise, seed=3), in_a_room(x, starts, noise, seed=3)
    assert np.array_equal(a, b) and a.shape == x.shape
    assert not np.array_equal(a, in_a_room(x, starts, noise, seed=4))
    change = levels_db(a) - levels_db(x)
    assert change.min() > -12.5 and change.max() < 3.0
    plain = in_a_room(x, starts, None, seed=3)          # without noise: gain (and reverb) only
    for s in starts:
        d = levels_db(plain[s:s + 10]) - levels_db(x[s:s + 10])
        assert np.ptp(d) < 3.0                          # one level per sound, not per window
    assert in_a_room(x[:0], starts[:0], noise).shape == (0, 3, 232)


def test_training_reverberates_only_the_taught_sounds():
    from edge.model import network as net
    from edge.model.train import BatchMaker, Recipe
    rng = np.random.default_rng(2)
    x = net.normalize(rng.uniform(-90, -30, (60, 3, 232)).astype(np.float32))
    y = np.repeat([0, 1, 2], 20)
    batches = BatchMaker(x, y, Recipe(reverb_prob=1.0), np.random.default_rng(0), background=2)
    xb, yb, _, _ = next(batches.epoch(np.arange(60), 60))
    changed = np.any(np.abs(xb - x) > 1e-4, axis=(1, 2))
    assert changed[yb != 2].all() and not changed[yb == 2].any()
    assert np.all(xb >= x - 1e-4)                       # a tail adds sound, never removes it
