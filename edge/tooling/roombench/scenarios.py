"""Deterministic room scenarios: teaching holds, a test stream and a household stream, with ground truth.

Everything is drawn from ``numpy.random.default_rng((GEN_VERSION, seed, scenario))`` over sorted file
lists, so one seed gives the same WAV bytes and events on every machine with the same packages.
Files land in ``<work>/gen-v<GEN_VERSION>-s<seed>[-quick]/``; a finished scenario (manifest.json) is
reused, so a second run only listens.

What each scenario teaches and tests with is in ``families``; the seeded randomness, room tone and
mixer in ``mix``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.audio.wavfile import write_wav
from edge.fileio import atomic_write_bytes
from edge.tooling.roombench.families import (NEAR_RHYMES, POOLS, WORD_A, WORD_B, Pools, _effects, _file, _has_line,
                                             _ktuberling, _sonic_distractors, _talk)
from edge.tooling.roombench.mix import GEN_VERSION as GEN_VERSION, SR, Mixer, normalise, rng_for, speed
from edge.tooling.roombench.sources import ESPEAK_LANGS, Sources

log = logging.getLogger(__name__)

SCENARIOS = ("words", "everyday", "snapwhistle")

REVERB_EQ = (["pad", "0", "0.6", "reverb", "50", "50", "80"], ["pad", "0", "0.4", "reverb", "30", "70", "50"],
             ["equalizer", "1000", "1q", "-9"], ["highpass", "400"], ["lowpass", "2500"],
             ["equalizer", "3000", "2q", "+6"])


@dataclass(frozen=True)
class Event:
    onset: float
    offset: float
    label: str
    """A taught class (``left``/``right``) or a distractor kind (talk, near_rhyme, effect, word, ...)."""
    source: str


@dataclass
class Stream:
    path: str
    duration: float
    events: list[Event] = field(default_factory=list)
    """Taught events and distractors (label tells which); a TV bed is listed with label ``tv``."""


@dataclass
class Scenario:
    name: str
    seed: int
    holds: list[tuple[str, str]]
    """(label, WAV path) of each teaching hold, in collection order."""
    test: Stream
    notes: dict


@dataclass(frozen=True)
class Sizes:
    """Lengths: the full bench, or ``--quick`` (every stage, shorter streams)."""

    events_per_class: int = 30
    distractors: int = 45
    household_chunks: int = 6
    chunk_s: float = 300.0

    @staticmethod
    def quick() -> "Sizes":
        return Sizes(events_per_class=8, distractors=12, household_chunks=1, chunk_s=300.0)


# ---------------------------------------------------------------------- holds and streams
TONE_DB = -58.0


def make_hold(rng: np.random.Generator, makers, seconds: float) -> np.ndarray:
    """One button hold: ``makers[0]``'s sound repeated with natural 0.3-1.2 s gaps over room tone."""
    mix = Mixer(rng, seconds, TONE_DB + rng.uniform(-3, 3))
    t = rng.uniform(0.15, 0.5)
    while t < seconds - 0.2:
        clip = speed(makers[0](rng), rng.uniform(0.96, 1.04))
        end = mix.add(clip, t, rng.uniform(-4, 0))
        t = end + rng.uniform(0.3, 1.2)
    return mix.buf


def make_noise_hold(rng: np.random.Generator, talk, seconds: float) -> np.ndarray:
    mix = Mixer(rng, seconds, TONE_DB + rng.uniform(-3, 3))
    if talk:
        t = rng.uniform(0.0, 0.4)
        while t < seconds - 0.3:
            clip = talk[int(rng.integers(0, len(talk)))](rng)
            t = mix.add(clip, t, rng.uniform(-10, -2)) + rng.uniform(0.1, 0.5)
    return mix.buf


def _tv_bed(src: Sources, rng: np.random.Generator, mix: Mixer, langs: list[str], seed: int, key: str,
            share: float, music: bool) -> list[Event]:
    """Quiet TV in the next room: segments of music and/or talk at −32..−22 dB, over whatever else plays."""
    out, t = [], rng.uniform(0, 10)
    songs = src.music()
    while t < mix.seconds - 5:
        seg = rng.uniform(15, 40)
        if rng.random() < share:
            end = min(mix.seconds, t + seg)
            if music and rng.random() < 0.5:
                name = songs[int(rng.integers(0, len(songs)))]
                m = src.music_clip(name)
                off = int(rng.uniform(0, max(1, m.shape[0] - seg * SR)))
                mix.add(normalise(m[off:off + int((end - t) * SR)]), t, rng.uniform(-30, -22))
                out.append(Event(round(t, 3), round(end, 3), "tv", f"music/{name}"))
            else:
                u = t
                lang = langs[int(rng.integers(0, len(langs)))]
                while u < end - 1:
                    clip = _talk(src, lang, f"{key}{u:.1f}", seed, 12)(rng)
                    clip = clip[:int((end - u) * SR)]
                    u = mix.add(clip, u, rng.uniform(-32, -26)) + rng.uniform(0.2, 0.8)
                out.append(Event(round(t, 3), round(end, 3), "tv", f"tv-talk/{lang}"))
        t += seg + rng.uniform(5, 20)
    return out


def make_test_stream(src: Sources, pools: Pools, rng: np.random.Generator, sizes: Sizes, seed: int,
                     path: Path) -> Stream:
    items = []
    for label, makers in pools.test.items():
        items += [(label, *makers[i % len(makers)]) for i in range(sizes.events_per_class)]
    pick = rng.choice(len(pools.distractors), size=min(sizes.distractors, len(pools.distractors)), replace=False)
    items += [pools.distractors[i] for i in sorted(pick)]
    order = rng.permutation(len(items))
    clips = []
    for i in order:
        label, source, maker = items[i]
        clip = maker(rng)
        if label in pools.test:
            if rng.random() < 0.3:
                clip = speed(clip, rng.uniform(0.94, 1.06))
                source += " speed"
            if rng.random() < 0.35:
                fx = REVERB_EQ[int(rng.integers(0, len(REVERB_EQ)))]
                clip = normalise(src.effect_chain(clip, fx, hashlib.sha1(clip.tobytes()).hexdigest()))
                source += " " + "+".join(a for a in fx if a not in ("pad", "0", "0.4", "0.6"))
        clips.append((label, source, clip, rng.uniform(-12, 0), rng.uniform(0.8, 2.5)))
    total = 1.0 + sum(c[2].shape[0] / SR + c[4] for c in clips)
    total = max(total, 60.0 if sizes.events_per_class < 30 else 180.0)
    mix = Mixer(rng, total, TONE_DB + rng.uniform(-3, 3))
    langs = pools.notes["test_langs"]
    events = _tv_bed(src, rng, mix, langs, seed, "tvtest", 0.3, music=False)
    t = 1.0
    spare = (total - (1.0 + sum(c[2].shape[0] / SR + c[4] for c in clips))) / max(1, len(clips))
    for label, source, clip, gain, gap in clips:
        end = mix.add(clip, t, gain)
        events.append(Event(round(t, 4), round(end, 4), label, source))
        t = end + gap + spare
    write_wav(path, mix.buf)
    return Stream(str(path), round(mix.seconds, 3), sorted(events, key=lambda e: e.onset))


def make_household(src: Sources, seed: int, sizes: Sizes, root: Path) -> list[Stream]:
    """Talk (also the teaching voices' other lines), near-rhymes, TV, effects, room tone: no taught sound."""
    manifest = root / "household.json"
    if manifest.is_file():
        # NOTE: paths re-rooted at load, so a moved --work DIR is still reused
        return [Stream(str(root / Path(d["path"]).name), d["duration"], [Event(**e) for e in d["events"]])
                for d in json.loads(manifest.read_text())]
    langs = list(ESPEAK_LANGS)
    pool = [("talk", f"hedgewars/{p}/{ln}", _file(src.voice, p, ln)) for p in src.voice_packs()
            for ln in src.voice_lines(p) if ln not in (WORD_A, WORD_B) + NEAR_RHYMES]
    pool += [("near_rhyme", f"hedgewars/{p}/{ln}", _file(src.voice, p, ln)) for p in src.voice_packs()
             for ln in NEAR_RHYMES if _has_line(src, p, ln)]
    pool += [("talk", f"espeak/{lang}/{k}", _talk(src, lang, f"house{k}", seed)) for lang in langs for k in range(4)]
    pool += _ktuberling(src, seed + 1000, 120)
    pool += [("effect", f"hedgewars/{e}", _file(src.effect, e)) for e in _effects(src)]
    pool += [("effect", f"sonic-pi/{s}", _file(src.sonic_clip, s)) for s in _sonic_distractors(src)]
    streams = []
    for c in range(sizes.household_chunks):
        rng = rng_for(seed, "household", str(c))
        mix = Mixer(rng, sizes.chunk_s, TONE_DB + rng.uniform(-3, 3))
        events = _tv_bed(src, rng, mix, langs, seed, f"tvhouse{c}", 0.45, music=True)
        t = rng.uniform(1, 4)
        while t < sizes.chunk_s - 3:
            kind, source, maker = pool[int(rng.integers(0, len(pool)))]
            clip = maker(rng)
            end = mix.add(clip, t, rng.uniform(-14, 0))
            events.append(Event(round(t, 4), round(end, 4), kind, source))
            # talk comes in bursts (a sentence, then a pause); effects are sparse
            t = end + (rng.uniform(0.2, 1.0) if kind == "talk" and rng.random() < 0.6 else rng.uniform(1.5, 8.0))
        path = root / f"household-{c}.wav"
        write_wav(path, mix.buf)
        streams.append(Stream(str(path), round(mix.seconds, 3), sorted(events, key=lambda e: e.onset)))
    atomic_write_bytes(manifest, json.dumps([asdict(s) for s in streams], indent=1).encode())
    return streams


def build_scenario(src: Sources, name: str, seed: int, sizes: Sizes, root: Path) -> Scenario:
    out = root / name
    manifest = out / "manifest.json"
    if manifest.is_file():
        d = json.loads(manifest.read_text())
        t = d["test"]
        return Scenario(d["name"], d["seed"], [(lb, str(out / Path(p).name)) for lb, p in d["holds"]],
                        Stream(str(out / Path(t["path"]).name), t["duration"], [Event(**e) for e in t["events"]]),
                        d["notes"])
    out.mkdir(parents=True, exist_ok=True)
    pools = POOLS[name](src, seed)
    rng = rng_for(seed, name, "holds")
    holds = []
    for label in ("left", "right", "noise"):
        for k in range(int(rng.integers(3, 5))):
            seconds = rng.uniform(3.0, 4.0)
            if label == "noise":
                buf = make_noise_hold(rng, pools.noise_talk if k % 2 else None, seconds)
            else:
                buf = make_hold(rng, pools.teach[label][k % len(pools.teach[label]):] +
                                pools.teach[label][:k % len(pools.teach[label])], seconds)
            path = out / f"hold-{label}-{k}.wav"
            write_wav(path, buf)
            holds.append((label, str(path)))
    test = make_test_stream(src, pools, rng_for(seed, name, "test"), sizes, seed, out / "test.wav")
    sc = Scenario(name, seed, holds, test, pools.notes)
    atomic_write_bytes(manifest, json.dumps(asdict(sc), indent=1).encode())
    return sc
