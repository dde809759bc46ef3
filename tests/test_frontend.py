"""The BROWSER_FFT front end against real Chromium output, streaming vs whole-file, the ring."""

import threading

import numpy as np
import pytest

from edge.audio.ring import Ring
from edge.audio.spectrogram import FrameStream, WindowStream, frame_db, frames_db, periodic_blackman, \
    windows_from_frames
from edge.config import FFT_SIZE, NUM_BINS


def test_matches_chromium_analyser_node(data_dir):
    g = np.load(data_dir / "chromium-analyser-golden.npz")
    signal = g["signal"].astype(np.float32)
    ours = np.stack([frame_db(signal[end - FFT_SIZE:end]) for end in g["window_end"]])
    assert ours.shape == g["db"].shape == (19, NUM_BINS)
    assert np.abs(ours - g["db"]).max() <= 0.01


def test_periodic_blackman_alpha_016():
    w = periodic_blackman()
    n = np.arange(FFT_SIZE)
    a = 0.16
    ref = (1 - a) / 2 - 0.5 * np.cos(2 * np.pi * n / FFT_SIZE) + a / 2 * np.cos(4 * np.pi * n / FFT_SIZE)
    assert np.allclose(w, ref, atol=1e-7)
    assert w[0] == pytest.approx(0.0, abs=1e-9) and w[FFT_SIZE // 2] == pytest.approx(1.0)


@pytest.mark.parametrize("hop", [1024, 512])
def test_streaming_equals_whole_file_for_any_block_sizes(hop):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(44100) * 0.1).astype(np.float32)
    whole = frames_db(x, hop)
    fs = FrameStream(hop)
    got, i = [], 0
    while i < x.shape[0]:
        n = int(rng.integers(1, 3000))
        got.append(fs.push(x[i:i + n]))
        i += n
    streamed = np.concatenate(got)
    assert streamed.shape == whole.shape == ((x.shape[0] - FFT_SIZE) // hop + 1, NUM_BINS)
    assert np.array_equal(streamed, whole)


@pytest.mark.parametrize("hop", [1024, 512])
def test_window_stream_gives_every_window_of_the_whole_signal_with_its_frame_index(hop):
    """The one window assembler (engine hop path, collect/listen --from-wav): blocks of any size,
    one sample to several hops, give exactly the whole signal's windows, numbered by newest frame."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(30000) * 0.1).astype(np.float32)
    whole = windows_from_frames(frames_db(x, hop))
    ws = WindowStream(FrameStream(hop))
    got, ks, i = [], [], 0
    while i < x.shape[0]:
        n = int(rng.choice([1, 7, 700, 1024, 2500, 5000]))
        windows, k = ws.push(x[i:i + n])
        got.append(windows)
        ks.extend(range(k, k + windows.shape[0]))
        i += n
    assert np.array_equal(np.concatenate(got), whole)
    assert ks == list(range(2, 2 + whole.shape[0]))      # window of frames k-2..k


def test_frame_k_covers_its_samples():
    x = np.zeros(10 * 1024 + FFT_SIZE, dtype=np.float32)
    x[5 * 1024 + 512] = 1.0          # inside frames 4 and 5 only (frame k = [k·1024, k·1024 + 2048))
    loud = np.flatnonzero(frames_db(x).max(axis=1) > -100)
    assert loud.tolist() == [4, 5]


def test_digital_silence_clamped_to_floor():
    f = frames_db(np.zeros(FFT_SIZE, dtype=np.float32), db_floor=-160.0)
    assert np.all(np.isfinite(f)) and np.all(f == -160.0) and f.dtype == np.float32


def test_windows_are_last_three_frames():
    frames = np.arange(5 * NUM_BINS, dtype=np.float32).reshape(5, NUM_BINS)
    w = windows_from_frames(frames)
    assert w.shape == (3, 3, NUM_BINS) and np.array_equal(w[-1], frames[2:5])


def test_ring_fast_producer_slow_consumer_never_corrupts_and_counts_overruns_exactly():
    """Samples carry their own absolute index, so any corruption or miscount is visible."""
    ring = Ring(4096, max_write=256)
    total = 256 * 1600
    done = threading.Event()

    def produce():
        for start in range(0, total, 256):
            ring.write(np.arange(start, start + 256, dtype=np.float32) % 65536)
        ring.close()
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    got = 0
    out = np.empty(ring.capacity, dtype=np.float32)
    rng = np.random.default_rng(0)
    while True:
        pos_before = ring.read_position
        lost_before = ring.overruns
        block = ring.read_new(out)
        skipped = ring.overruns - lost_before
        if block.size:
            first = pos_before + skipped
            expect = np.arange(first, first + block.size) % 65536
            assert np.array_equal(block, expect.astype(np.float32)), "corrupt samples returned"
        got += block.size
        if done.is_set() and ring.available() == 0:
            break
        # a slow, irregular consumer
        threading.Event().wait(float(rng.uniform(0, 0.002)))
    t.join()
    assert got + ring.overruns == total
    assert ring.overruns > 0, "the consumer was meant to lag"


def test_whole_signal_frames_view_only_the_frames_used(monkeypatch):
    """32-bit Pi OS: a view over every sample offset of a > 3 s signal is 'too big' for numpy's index
    type. The frames must come from a view of the n frames used, and stay bit-identical."""
    import numpy as np
    from edge.audio import spectrogram
    sig = np.random.default_rng(0).standard_normal(44100 * 10).astype(np.float32) * 0.1
    seen = []
    real = np.lib.stride_tricks.as_strided

    def spy(x, shape=None, strides=None, **kw):
        seen.append(int(np.prod(shape)))
        return real(x, shape=shape, strides=strides, **kw)

    monkeypatch.setattr(np.lib.stride_tricks, "as_strided", spy)
    monkeypatch.setattr(np.lib.stride_tricks, "sliding_window_view",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("a view of every sample offset")))
    frames = spectrogram.frames_db(sig)
    n = 1 + (sig.size - 2048) // 1024
    assert frames.shape == (n, 232) and max(seen) == n * 2048
    monkeypatch.undo()
    stream = spectrogram.FrameStream()
    assert np.array_equal(frames, stream.push(sig))
