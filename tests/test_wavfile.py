"""WAV input: any rate, channels and bit depth → 44.1 kHz mono; bad files are one-line errors."""

import struct
import wave

import numpy as np
import pytest

from edge.audio.spectrogram import frames_db
from edge.audio.wavfile import read_wav, wav_info, write_wav
from edge.errors import WavError


def _write(path, rate, channels, width, tone_hz=1000.0, seconds=0.5, fmt="pcm"):
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * tone_hz * t)
    data = np.repeat(x[:, None], channels, axis=1)
    if fmt == "float":
        payload = data.astype("<f4").tobytes()
        fmt_chunk = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + \
            struct.pack("<I", len(payload)) + payload
        path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        return
    if width == 1:
        pcm = np.round(data * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        ints = np.round(data * (2 ** 23 - 1)).astype("<i4")
        pcm = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.reshape(-1))
    else:
        dtype = {2: "<i2", 4: "<i4"}[width]
        pcm = np.round(data * (2 ** (8 * width - 1) - 1)).astype(dtype).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)


@pytest.mark.parametrize("rate,channels,width,fmt", [
    (44100, 1, 2, "pcm"), (48000, 2, 2, "pcm"), (22050, 1, 3, "pcm"), (16000, 6, 4, "pcm"),
    (8000, 1, 1, "pcm"), (96000, 2, 4, "float"),
])
def test_any_wav_becomes_44k1_mono_and_a_1khz_tone_peaks_at_bin_46(tmp_path, rate, channels, width, fmt):
    p = tmp_path / "tone.wav"
    _write(p, rate, channels, width, fmt=fmt)
    x = read_wav(p)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.shape[0] == pytest.approx(0.5 * 44100, abs=64)
    peak_bins = frames_db(x).argmax(axis=1)
    assert np.all(np.abs(peak_bins - 46) <= 1)          # 1000 / (44100 / 2048) = 46.4
    assert 0.4 < np.abs(x).max() < 0.6
    assert wav_info(p).rate == rate


@pytest.mark.parametrize("content,needle", [
    (b"", "empty"), (b"not a wav file at all", "RIFF"), (b"RIFF\x10\x00\x00\x00WAVEfmt ", "damaged"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, needle):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(WavError) as e:
        read_wav(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert needle.lower() in msg.lower()


def test_missing_file_and_empty_data(tmp_path):
    with pytest.raises(WavError, match="no such file|cannot read"):
        read_wav(tmp_path / "nope.wav")
    p = tmp_path / "silent.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(44100)
    with pytest.raises(WavError, match="no samples|empty"):
        read_wav(p)


def test_write_is_atomic_and_round_trips(tmp_path):
    p = tmp_path / "out.wav"
    x = (np.sin(np.arange(4410) / 10) * 0.3).astype(np.float32)
    write_wav(p, x)
    assert np.allclose(read_wav(p), x, atol=1 / 16384)
    assert [q.name for q in tmp_path.iterdir()] == ["out.wav"]


def test_truncated_wav_warns_with_both_lengths_and_keeps_the_audio_there_is(tmp_path, caplog):
    """A copy cut short (header 4.65 s, data 0.34 s) was accepted silently."""
    full = tmp_path / "full.wav"
    x = (np.sin(np.arange(int(4.65 * 44100)) / 10) * 0.3).astype(np.float32)
    write_wav(full, x)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:44 + int(0.34 * 44100) * 2])
    with caplog.at_level("WARNING", logger="edge.audio.wavfile"):
        y = read_wav(cut)
    assert y.shape[0] == int(0.34 * 44100)
    assert np.allclose(y, x[:y.shape[0]], atol=1 / 16384)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "4.65 s" in warnings[0] and "0.34 s" in warnings[0] and str(cut) in warnings[0]
    caplog.clear()
    read_wav(full)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("rate,channels,width,fmt", [(44100, 1, 2, "pcm"), (48000, 2, 2, "pcm"),
                                                     (22050, 1, 3, "pcm")])
def test_streamed_blocks_are_the_whole_file(tmp_path, rate, channels, width, fmt):
    """A long file is read block by block; the blocks are exactly what reading it whole gives."""
    from edge.audio.wavfile import open_wav
    p = tmp_path / "tone.wav"
    _write(p, rate, channels, width, seconds=3.3, fmt=fmt)
    whole = read_wav(p)
    blocks = list(open_wav(p).blocks(frames=10_000))
    assert len(blocks) > 5 and all(b.dtype == np.float32 for b in blocks)
    assert np.array_equal(np.concatenate(blocks), whole)


def test_wav_source_replays_the_file_as_read_whole_and_loops(tmp_path):
    """The daemon's WAV source reads as it plays (a 1-hour file was read whole: 1.85 GB RSS)."""
    from edge.audio.ring import Ring
    from edge.audio.sources import WavSource
    p = tmp_path / "tone.wav"
    _write(p, 48000, 2, 2, seconds=1.3)
    whole = read_wav(p)
    for loop, gain_db in ((False, 0.0), (True, -6.0)):
        ring = Ring(4 * 44100, max_write=8192)
        got, want = [], 2 * whole.shape[0] + 5 if loop else whole.shape[0]
        with WavSource(ring, p, realtime=False, loop=loop, block=1000, gain_db=gain_db):
            while sum(map(len, got)) < want and ring.wait(2.0):
                got.append(ring.read_new())
        x = np.concatenate(got)
        assert ring.overruns == 0
        expect = np.concatenate([whole] * 3)[:len(x)] * 10 ** (gain_db / 20)
        assert len(x) >= want if loop else len(x) == whole.shape[0]
        assert np.allclose(x, expect, atol=1e-6)
