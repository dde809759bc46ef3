"""Sounds nobody on the team made, from Debian packages: for benchmarks and robustness checks.

* ``espeak-ng`` voices (synthetic talk; different voices for teaching and for testing),
* ``alsa-utils``: /usr/share/sounds/alsa/*.wav — a real human voice,
* ``sound-theme-freedesktop``: bells, shutters, chimes (.oga, converted with ``sox``).

Everything is optional: a missing tool or package just gives fewer sounds (reported by the caller).
"""

from __future__ import annotations

import glob
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edge.audio.wavfile import read_wav

log = logging.getLogger(__name__)

TEACH_VOICES = ("en-gb+m3", "en-us+f2", "en+m5")
TEST_VOICES = ("en-gb+f4", "en-us+m2", "de+m2", "fr+f1")
TEACH_TEXT = ("Good morning everyone. Let us talk about the garden, the radio and what we will cook for "
              "dinner tonight. Numbers one two three four five.")
TEST_TEXT = ("Hello, this is a test of the edge slider. The weather today is fine, and the kettle is boiling "
             "in the kitchen. Could you please pass the salt?")


def espeak(text: str, voices: tuple[str, ...], workdir: Path) -> list[np.ndarray]:
    if shutil.which("espeak-ng") is None:
        return []
    out = []
    for i, voice in enumerate(voices):
        wav = workdir / f"espeak-{i}-{voice.replace('+', '_')}.wav"
        r = subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", str(wav), text], capture_output=True)
        if r.returncode == 0 and wav.is_file():
            out.append(read_wav(wav))
    return out


def alsa_voice() -> list[np.ndarray]:
    return [read_wav(f) for f in sorted(glob.glob("/usr/share/sounds/alsa/*.wav"))]


def freedesktop_effects(workdir: Path) -> list[np.ndarray]:
    if shutil.which("sox") is None:
        return []
    out = []
    for f in sorted(glob.glob("/usr/share/sounds/freedesktop/stereo/*.oga")):
        wav = workdir / (Path(f).stem + ".wav")
        if subprocess.run(["sox", f, "-r", "44100", "-c", "1", "-b", "16", str(wav)], capture_output=True).returncode == 0:
            out.append(read_wav(wav))
    return out


def join(clips: list[np.ndarray], gap_s: float = 0.5, gain_db: float = 0.0) -> np.ndarray:
    gap = np.zeros(int(gap_s * 44100), np.float32)
    g = np.float32(10 ** (gain_db / 20))
    return np.concatenate([np.concatenate([c * g, gap]) for c in clips]).astype(np.float32) if clips else \
        np.zeros(0, np.float32)
