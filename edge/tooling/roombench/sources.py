"""Decoded source sounds for the room bench: allowed Debian packages, espeak-ng, sox synth (cached)."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from edge.audio.wavfile import read_wav
from edge.config import SAMPLE_RATE
from edge.errors import UsageError

log = logging.getLogger(__name__)

HEDGEWARS = Path("/usr/share/games/hedgewars/Data")
VOICES = HEDGEWARS / "Sounds" / "voices"
KTUBERLING = Path("/usr/share/ktuberling/sounds")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
SONIC_PREFIXES = ("drum_", "perc_", "elec_", "bd_", "sn_", "tabla_")
"""The only sonic-pi samples the bench may use: the others are the training bank's (issue 12)."""
ESPEAK_LANGS = ("nl", "sv", "da", "nb", "sk", "sl", "hr", "bg", "uk", "lt", "lv", "et", "af", "id", "ms", "vi",
                "sw", "cy", "is", "eo")
"""The only espeak-ng languages the bench may use (English ones are a held-out test's, others the bank's)."""
PACKAGES = ("hedgewars-data", "ktuberling-data", "sonic-pi-samples", "espeak-ng", "sox")


class Sources:
    """Decodes sounds once into ``cache`` (44.1 kHz mono 16-bit WAV), then reads them from there."""

    def __init__(self, cache: Path):
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        missing = [p for p, d in (("hedgewars-data", VOICES), ("ktuberling-data", KTUBERLING),
                                  ("sonic-pi-samples", SONIC_PI)) if not d.is_dir()]
        missing += [t for t in ("sox", "espeak-ng") if shutil.which(t) is None]
        if missing:
            raise UsageError(f"bench --room: missing {', '.join(missing)}: apt-get install {' '.join(PACKAGES)} "
                             "(deploy/dev.sh setup does)")

    # ------------------------------------------------------------------ files
    def decode(self, path: Path) -> np.ndarray:
        path = Path(path)
        out = self.cache / "files" / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".wav")
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp.wav")
            _sox([str(path), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(tmp)])
            tmp.rename(out)
        return trim(read_wav(out))

    def voice_packs(self) -> list[str]:
        return sorted(d.name for d in VOICES.iterdir() if d.is_dir())

    def voice_lines(self, pack: str) -> list[str]:
        return list(_lines(pack))

    def voice(self, pack: str, line: str) -> np.ndarray:
        return self.decode(VOICES / pack / f"{line}.ogg")

    def effects(self) -> list[str]:
        return sorted(f.stem for f in (HEDGEWARS / "Sounds").glob("*.ogg"))

    def effect(self, name: str) -> np.ndarray:
        return self.decode(HEDGEWARS / "Sounds" / f"{name}.ogg")

    def music(self) -> list[str]:
        return sorted(f.stem for f in (HEDGEWARS / "Music").glob("*.ogg"))

    def music_clip(self, name: str) -> np.ndarray:
        return self.decode(HEDGEWARS / "Music" / f"{name}.ogg")

    def sonic(self) -> list[str]:
        return sorted(f.stem for f in SONIC_PI.glob("*.flac") if f.name.startswith(SONIC_PREFIXES))

    def sonic_clip(self, name: str) -> np.ndarray:
        if not name.startswith(SONIC_PREFIXES):
            raise ValueError(f"sonic-pi sample {name!r} is not one the room bench may use")
        return self.decode(SONIC_PI / f"{name}.flac")

    def words(self) -> list[tuple[str, str]]:
        """(language, word) of every ktuberling word."""
        return sorted((d.name, f.stem) for d in KTUBERLING.iterdir() if d.is_dir() for f in d.glob("*.ogg"))

    def word(self, lang: str, name: str) -> np.ndarray:
        return self.decode(KTUBERLING / lang / f"{name}.ogg")

    # ------------------------------------------------------------------ generated
    def espeak(self, lang: str, text: str, variant: str = "", speed: int = 160, pitch: int = 50) -> np.ndarray:
        if lang not in ESPEAK_LANGS:
            raise ValueError(f"espeak-ng language {lang!r} is not one the room bench may use")
        voice = lang + (f"+{variant}" if variant else "")
        key = hashlib.sha1(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:16]
        out = self.cache / "espeak" / f"{key}.wav"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            raw = out.with_suffix(".raw.wav")
            r = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise UsageError(f"espeak-ng -v {voice} failed: {r.stderr.strip()[:200]}")
            _sox([str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out.with_suffix(".tmp.wav"))])
            out.with_suffix(".tmp.wav").rename(out)
            raw.unlink()
        return trim(read_wav(out))

    def synth(self, effect_args: list[str]) -> np.ndarray:
        """``sox -n out.wav <effect_args>`` (e.g. ``synth 0.5 sine 2000 fade 0 0.5 0.1``)."""
        key = hashlib.sha1(" ".join(effect_args).encode()).hexdigest()[:16]
        out = self.cache / "synth" / f"{key}.wav"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp.wav")
            _sox(["-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(tmp), *effect_args])
            tmp.rename(out)
        return trim(read_wav(out))

    def effect_chain(self, x: np.ndarray, effect_args: list[str], tag: str) -> np.ndarray:
        """Run sox effects (reverb, equalizer, highpass, ...) over a clip; cached by ``tag`` + arguments."""
        from edge.audio.wavfile import write_wav
        key = hashlib.sha1((tag + "|" + " ".join(effect_args)).encode()).hexdigest()[:16]
        out = self.cache / "fx" / f"{key}.wav"
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            src = out.with_suffix(".in.wav")
            write_wav(src, x)
            tmp = out.with_suffix(".tmp.wav")
            _sox([str(src), "-b", "16", str(tmp), *effect_args])
            tmp.rename(out)
            src.unlink()
        return trim(read_wav(out))


@lru_cache(maxsize=None)
def _lines(pack: str) -> tuple[str, ...]:
    return tuple(sorted(f.stem for f in (VOICES / pack).glob("*.ogg")))


def _sox(args: list[str]) -> None:
    # NOTE: -R (repeatable): sox dithers when it writes 16 bits and seeds its noise from the clock;
    # without it one seed gave different bytes (and event offsets) on every run.
    r = subprocess.run(["sox", "-R", "-q", "-V1", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"sox {' '.join(args)[:160]} failed: {r.stderr.strip()[:200]}")


def trim(x: np.ndarray, below_db: float = 45.0) -> np.ndarray:
    """Cut leading/trailing samples quieter than the clip's peak − ``below_db`` (so onsets are exact)."""
    a = np.abs(x)
    if a.size == 0 or a.max() == 0:
        return x
    idx = np.flatnonzero(a >= a.max() * 10 ** (-below_db / 20))
    return x[idx[0]:idx[-1] + 1].astype(np.float32, copy=False)


@lru_cache(maxsize=1)
def syllables() -> tuple[str, ...]:
    cons = "b d f g h j k l m n p r s t v z".split()
    vows = "a e i o u".split()
    return tuple(c + v for c in cons for v in vows) + tuple(c + v + e for c in cons[:8] for v in vows
                                                            for e in ("n", "s", "r"))


def babble_text(rng: np.random.Generator, words: int) -> str:
    """Pseudo-sentences read with a language's rules: talk-like prosody without writing 20 languages' text."""
    syl = syllables()
    out = []
    for _ in range(words):
        w = "".join(syl[j] for j in rng.integers(0, len(syl), rng.integers(1, 4)))
        out.append(w + ("." if rng.random() < 0.15 else ("," if rng.random() < 0.1 else "")))
    return " ".join(out)
