"""Real capture: PortAudio (PyAudio) ← PulseAudio null sink ← paplay of a WAV.

Runs in CI: the fixture starts a private PulseAudio (shared/PLATFORM.md recipe). The captured
audio must give the same BROWSER_FFT frames as the file, after alignment.
"""

import subprocess
import time

import numpy as np
import pytest

from edge.audio import synth
from edge.audio.ring import Ring
from edge.audio.spectrogram import frames_db
from edge.audio.wavfile import write_wav
from edge.config import SAMPLE_RATE, AudioSettings

pytestmark = pytest.mark.pulse


def test_devices_lists_pulse(pulse):
    from edge.audio.mic import find_device, list_devices
    devices = list_devices()
    names = [d["name"] for d in devices]
    assert any("pulse" in n or "default" in n for n in names), names
    assert find_device(devices, "pulse") is not None
    assert find_device(devices, "no-such-mic-xyz") is None


def test_capture_matches_the_file(pulse, tmp_path):
    from edge.audio.mic import PyAudioSource
    scene, _ = synth.render("gap:0.3, snap, gap:0.4, whistle:0.5, gap:0.3, snap, gap:0.5", seed=5)
    wav = tmp_path / "scene.wav"
    write_wav(wav, scene)
    ring = Ring(int(12 * SAMPLE_RATE), max_write=8192)
    source = PyAudioSource(ring, AudioSettings(device="pulse"))
    with source:
        assert source.wait_started(5.0), "PortAudio delivered nothing within 5 s"
        mark = ring.end
        subprocess.run(["paplay", "--device=test_sink", str(wav)], env=pulse, check=True, timeout=30)
        time.sleep(0.5)
        assert source.healthy()
    captured = ring.last(ring.end - mark)
    assert ring.overruns == 0
    assert source.input_overflows == 0
    # Align by cross-correlation of the envelopes, then compare frames.
    n = scene.shape[0]
    assert captured.shape[0] >= n, "capture shorter than the file"
    size = 1 << int(np.ceil(np.log2(captured.shape[0] + n)))
    xc = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(scene, size)), size)
    lag = int(np.argmax(xc[:captured.shape[0] - n + 1]))
    best = (float(np.corrcoef(captured[lag:lag + n], scene)[0, 1]), lag)
    assert best is not None and best[0] >= 0.95, f"sample correlation {best}"
    f_file = frames_db(scene)
    f_cap = frames_db(captured[best[1]:best[1] + n])
    fc = float(np.corrcoef(f_file.reshape(-1), f_cap.reshape(-1))[0, 1])
    print(f"capture: sample correlation {best[0]:.4f}, frame correlation {fc:.4f}")
    assert fc >= 0.95, f"frame correlation {fc:.3f}"


def test_unknown_device_is_a_one_line_error(pulse):
    from edge.audio.mic import PyAudioSource
    from edge.errors import AudioError
    with pytest.raises(AudioError, match="audio.device = 'nope-xyz'") as e:
        PyAudioSource(Ring(44100), AudioSettings(device="nope-xyz")).start()
    assert "\n" not in str(e.value)


def test_record_cli_captures_from_pulse(pulse, tmp_path):
    """`edge-slider record` end to end: the mic path, a WAV written atomically."""
    import threading
    from edge.cli import main
    out = tmp_path / "rec.wav"
    tone = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    write_wav(tmp_path / "tone.wav", tone)
    player = threading.Timer(1.0, lambda: subprocess.run(["paplay", "--device=test_sink", str(tmp_path / "tone.wav")],
                                                         env=pulse, timeout=30))
    player.start()
    rc = main(["--state-dir", str(tmp_path / "s"), "record", "--seconds", "3", "--out", str(out), "--device", "pulse"])
    player.join()
    assert rc == 0 and out.is_file()
    from edge.audio.wavfile import read_wav
    x = read_wav(out)
    assert x.shape[0] == pytest.approx(3 * SAMPLE_RATE, abs=2048)
    loud = frames_db(x).max(axis=0)
    assert abs(int(loud.argmax()) - 46) <= 1        # the 1 kHz tone made it through


def test_devices_cli_marks_the_configured_input(pulse, capsys, tmp_path):
    from edge.cli import main
    cfg = tmp_path / "c.toml"
    cfg.write_text('[audio]\ndevice = "pulse"\n')
    assert main(["--config", str(cfg), "--state-dir", str(tmp_path / "s"), "devices"]) == 0
    out = capsys.readouterr().out
    marked = [line for line in out.splitlines() if line.startswith("* ") and line[2:].strip()[:1].isdigit()]
    assert len(marked) == 1, out


def test_collect_from_the_microphone_stores_gated_windows(pulse, capsys, tmp_path):
    """`collect --seconds` on the real capture path: snaps played into the sink become `left` examples."""
    import threading
    from edge.cli import main
    from edge.teach.store import ExampleStore
    wav = tmp_path / "snaps.wav"
    write_wav(wav, synth.render("gap:0.3, snap, gap:0.5, snap, gap:0.5, snap, gap:0.3", seed=2)[0])
    cfg = tmp_path / "c.toml"
    cfg.write_text('[audio]\ndevice = "pulse"\n')
    player = threading.Timer(0.8, lambda: subprocess.run(["paplay", "--device=test_sink", str(wav)], env=pulse,
                                                         timeout=30))
    player.start()
    state = tmp_path / "s"
    rc = main(["--config", str(cfg), "--state-dir", str(state), "collect", "--label", "left", "--seconds", "4"])
    player.join()
    assert rc == 0
    with ExampleStore(state / "examples.sqlite") as store:
        counts = store.counts()
    # three snaps: a handful of loud windows each; the quiet between them went to noise
    assert 6 <= counts.get("left", 0) <= 45, counts
    assert counts.get("noise", 0) > counts["left"], counts


def test_a_mic_that_refuses_44k1_is_opened_at_its_rate_and_resampled(pulse, tmp_path, monkeypatch):
    """The fallback path for real: PortAudio opened at 48 kHz (as a USB mic that cannot do 44.1 kHz),
    soxr streaming in the callback, and the frames still match the file."""
    import pyaudio
    from edge.audio import mic
    from edge.errors import ResampleWarning
    real_list = mic.list_devices
    monkeypatch.setattr(mic, "list_devices", lambda: [{**d, "default_rate": 48000} for d in real_list()])
    real_supported = pyaudio.PyAudio.is_format_supported

    def refuse_44k1(self, rate, *a, **kw):
        if int(rate) == 44100:
            raise ValueError("Invalid sample rate")
        return real_supported(self, rate, *a, **kw)

    monkeypatch.setattr(pyaudio.PyAudio, "is_format_supported", refuse_44k1)
    scene, _ = synth.render("gap:0.3, whistle:0.5, gap:0.3, snap, gap:0.4", seed=8)
    wav = tmp_path / "scene.wav"
    write_wav(wav, scene)
    ring = Ring(int(12 * SAMPLE_RATE), max_write=8192)
    source = mic.PyAudioSource(ring, AudioSettings(device="pulse"))
    with pytest.warns(ResampleWarning, match="48000 Hz"):
        source.start()
    try:
        assert source.device_rate == 48000 and source.wait_started(5.0)
        mark = ring.end
        subprocess.run(["paplay", "--device=test_sink", str(wav)], env=pulse, check=True, timeout=30)
        time.sleep(0.5)
    finally:
        source.stop()
    captured = ring.last(ring.end - mark)
    n = scene.shape[0]
    size = 1 << int(np.ceil(np.log2(captured.shape[0] + n)))
    xc = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(scene, size)), size)
    lag = int(np.argmax(xc[:captured.shape[0] - n + 1]))
    fc = float(np.corrcoef(frames_db(scene).reshape(-1), frames_db(captured[lag:lag + n]).reshape(-1))[0, 1])
    print(f"resampled capture: frame correlation {fc:.4f}")
    assert fc >= 0.95
