"""Fault injection with a bad file: a 1-hour WAV through the REAL CLI (a subprocess) in bounded memory.

The WAV is generated in tmp (never committed), written block by block so this test itself stays
small. Per minute: 15 s of exact digital zeros (a muted stream), then 45 s of a quiet room (-70 dBFS
noise) with a 0.3 s 1 kHz tone every 5 s. Measured before the fix: `collect` of such a file peaked
at 6.9 GB RSS and stored the digital silence; `listen` peaked at 1.9 GB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

RATE = 44_100
MINUTE_PLAN = (15.0, 45.0)
"""Seconds of digital zeros, then seconds of quiet room with tones, in each minute."""
TONE_EVERY_S, TONE_S = 5.0, 0.3
RSS_LIMIT_KB = 100 * 1024
DATA = Path(__file__).parent / "data"


def write_long_wav(path: Path, minutes: float, seed: int = 0) -> None:
    """A 16-bit mono 44.1 kHz WAV of ``minutes``, one second of audio in memory at a time."""
    rng = np.random.default_rng(seed)
    zeros_s, _ = MINUTE_PLAN
    t_tone = np.arange(int(TONE_S * RATE)) / RATE
    tone = (0.1 * np.sin(2 * np.pi * 1000.0 * t_tone) * np.hanning(t_tone.size)).astype(np.float32)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for second in range(int(round(minutes * 60))):
            if second % 60 < zeros_s:
                block = np.zeros(RATE, np.float32)
            else:
                block = (rng.standard_normal(RATE) * 10 ** (-70 / 20)).astype(np.float32)
                if (second % 60 - zeros_s) % TONE_EVERY_S == 0:
                    block[:tone.size] += tone
            w.writeframes((np.clip(block, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes())


# NOTE: `python -m edge` with a hook that prints the process's own VmHWM at exit. ru_maxrss of a
# child is unusable here: a forked child's starts at the parent's (pytest's) size.
_HWM_WRAPPER = ("import atexit, runpy, sys\n"
                "def hwm():\n"
                "    for line in open('/proc/self/status'):\n"
                "        if line.startswith('VmHWM:'):\n"
                "            print('VmHWM', line.split()[1], file=sys.stderr)\n"
                "atexit.register(hwm)\n"
                "sys.argv[0] = 'edge'\n"
                "runpy.run_module('edge', run_name='__main__', alter_sys=True)\n")


def run_measured(args: list[str], env: dict, timeout: float) -> tuple[int, str, str, int]:
    """Run ``python -m edge ARGS``; (exit code, stdout, stderr, peak RSS in kB of that process)."""
    r = subprocess.run([sys.executable, "-c", _HWM_WRAPPER, *args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    lines = r.stderr.splitlines()
    kb = next(int(line.split()[1]) for line in reversed(lines) if line.startswith("VmHWM"))
    return r.returncode, r.stdout, "\n".join(ln for ln in lines if not ln.startswith("VmHWM")), kb


@pytest.fixture(scope="module")
def hour_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("longwav") / "hour.wav"
    write_long_wav(path, 60.0)
    return path


@pytest.fixture
def cli_env() -> dict:
    return dict(os.environ)


def _store_rows(state: Path) -> list[tuple[str, str, bytes]]:
    import sqlite3
    with sqlite3.connect(state / "examples.sqlite") as db:
        return db.execute("SELECT label, session, window FROM examples ORDER BY id").fetchall()


@pytest.mark.slow
def test_collect_of_a_one_hour_wav_stays_small_stores_no_silence_and_stops_at_the_cap(hour_wav, tmp_path, cli_env):
    state = tmp_path / "state"
    # Something stored before: it must survive the long collection untouched.
    r = subprocess.run([sys.executable, "-m", "edge", "--state-dir", str(state), "dataset", "import",
                        str(DATA / "seed-test.npz")], capture_output=True, text=True, timeout=120, env=cli_env)
    assert r.returncode == 0, r.stderr
    before = _store_rows(state)
    assert before
    rc, out, err, rss_kb = run_measured(["--state-dir", str(state), "collect", "--label", "left",
                                         "--from-wav", str(hour_wav)], cli_env, timeout=900)
    assert rc == 0, err
    assert rss_kb <= RSS_LIMIT_KB, f"collect peaked at {rss_kb / 1024:.0f} MB RSS (limit 100 MB)"
    rows = _store_rows(state)
    assert rows[:len(before)] == before, "previously stored examples changed"
    new = rows[len(before):]
    # The cap (collect.max_windows_per_collection, default 4000) stopped it, and said so once.
    assert 0 < len(new) <= 4000
    assert (out + err).count("max_windows_per_collection") == 1, out + err
    # No window of exact digital zeros is stored under any class.
    x = np.stack([np.frombuffer(w, np.float32).reshape(3, 232) for _, _, w in new])
    assert (x.max(axis=(1, 2)) > -150).all(), "digital silence stored"
    labels = {lb for lb, _, _ in new}
    assert labels <= {"left", "noise"} and "left" in labels


@pytest.mark.slow
def test_listen_to_a_one_hour_wav_stays_small(hour_wav, tmp_path, cli_env):
    from edge.tooling.measure import SEED_CLASSES_TOML
    state, cfg = tmp_path / "state", tmp_path / "seed.toml"
    cfg.write_text(SEED_CLASSES_TOML)
    opts = ["--config", str(cfg), "--state-dir", str(state)]
    for cmd in (["dataset", "import", str(DATA / "seed-train.npz")], ["train", "--epochs", "2"]):
        r = subprocess.run([sys.executable, "-m", "edge", *opts, *cmd], capture_output=True, text=True,
                           timeout=300, env=cli_env)
        assert r.returncode == 0, r.stderr
    rc, out, err, rss_kb = run_measured([*opts, "listen", "--from-wav", str(hour_wav)], cli_env, timeout=1800)
    assert rc == 0, err
    assert rss_kb <= RSS_LIMIT_KB, f"listen peaked at {rss_kb / 1024:.0f} MB RSS (limit 100 MB)"
    assert "3600.0 s of audio" in err


@pytest.mark.slow
def test_the_daemon_replaying_a_one_hour_wav_stays_small(hour_wav, tmp_path, cli_env):
    """`run --from-wav` read the whole file first (1.85 GB RSS for this one)."""
    rc, out, err, rss_kb = run_measured(["--state-dir", str(tmp_path / "state"), "run", "--simulate", "--no-mqtt",
                                         "--from-wav", str(hour_wav), "--duration", "3"], cli_env, timeout=120)
    assert rc == 0, err
    assert rss_kb <= RSS_LIMIT_KB, f"run --from-wav peaked at {rss_kb / 1024:.0f} MB RSS (limit 100 MB)"


@pytest.mark.slow
def test_spectrogram_of_a_one_hour_wav_stays_small(hour_wav, tmp_path, cli_env):
    rc, out, err, rss_kb = run_measured(["--state-dir", str(tmp_path / "state"), "spectrogram", "--from-wav",
                                         str(hour_wav)], cli_env, timeout=600)
    assert rc == 0, err
    assert rss_kb <= RSS_LIMIT_KB, f"spectrogram peaked at {rss_kb / 1024:.0f} MB RSS (limit 100 MB)"
    assert "3600.00 s" in out and "frames: 155038 × 232 bins" in out
    rc, out, err, rss_kb = run_measured(["--state-dir", str(tmp_path / "state"), "spectrogram", "--from-wav",
                                         str(hour_wav), "--png", str(tmp_path / "s.png")], cli_env, timeout=600)
    assert rc != 0 and "--png" in err and "sox" in err and not (tmp_path / "s.png").exists()
