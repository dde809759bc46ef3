"""The room bench's scenario families: what each one teaches, tests with, and plays as distractors.

* ``words``: two voice lines ("Hello", "Oops") from some voice packs, tested on the other packs;
* ``everyday``: one family of takes of a knock and of a chime, tested on a take never taught;
* ``snapwhistle``: synthesised snaps and whistles, tested on other draws around the taught ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edge.tooling.roombench.mix import SR, cap, db, normalise, rng_for
from edge.tooling.roombench.sources import ESPEAK_LANGS, Sources, babble_text

# words: "Hello" and "Oops" are in all 15 voice packs, short (0.3-2 s), and differ in vowel and
# ending (voiced /lo/ vs. plosive /ps/); each has near-rhymes among the other lines.
WORD_A, WORD_B = "Hello", "Oops"
NEAR_RHYMES = ("Melon", "Nooo", "Ohdear", "Yessir", "Uh-oh", "Ouch", "Ooff1", "Ooff2", "Hmm")
# NOTE: the packs with a language suffix (Default_es, Default_pl, ...) may say a translation of the
# line: they only ever talk, and never count as the taught word.
WORD_PACKS_EXCLUDE_SUFFIX = "_"
# everyday: a user teaches *their* knock and *their* chime, and the device later hears new recordings
# of the same sound (another take, another day, another level and room). So each seed picks one family
# of takes of one sound; teaching uses some takes, the test only the others (never a shared recording).
# NOTE: generator v3 taught two different sounds per class and tested on four others (elec_bell +
# elec_triangle taught, perc_bell / elec_ping / ... tested): that measured recognising *any* chime
# from two examples (chime recall 0.13 for the codelab-style model), not the device's job.
KNOCK_FAMILIES = (("tabla_ke1", "tabla_ke2", "tabla_ke3"), ("tabla_te1", "tabla_te2", "tabla_te_m"),
                  ("tabla_tas1", "tabla_tas2", "tabla_tas3"))
# NOTE: generator v4's other chime family, perc_bell / perc_bell2, were two different bells, not two
# takes of one: their loud frames' spectra differ by 44.6 dB rms (a 3.6 kHz partial against a 130 Hz
# body), more than perc_bell and tabla_tun1 do (22.6), while the takes of every other family here
# differ by 2.3-19 dB. Taught one, tested on the other, the device found 0-4 of 30 on every seed
# that drew them. v5 strikes one synthetic bell instead (BELL_TAKES): takes of one bell differ by
# the strike, not by the bell. The two files stay out of the distractors, as in v4.
BELL_TAKES = ("bell_take1", "bell_take2", "bell_take3")
CHIME_FAMILIES = (BELL_TAKES, ("tabla_tun1", "tabla_tun2", "tabla_tun3"))
KNOCK_POOL = tuple(f for fam in KNOCK_FAMILIES for f in fam)
CHIME_POOL = ("perc_bell", "perc_bell2") + tuple(f for fam in CHIME_FAMILIES for f in fam)
BELL_PARTIALS = (1.0, 2.0, 2.76, 4.1, 5.4)
"""Partial ratios of a struck bell / bar (inharmonic, as struck metal is)."""
# NOTE: a finger snap or a whistle from the sample packs is the taught sound itself, not a false
# move when the model reacts: these never appear as distractors.
NOT_DISTRACTORS = ("perc_snap", "perc_snap2", "Whistle")


@dataclass
class Pools:
    """What a scenario teaches and tests with; clips are normalised to a −6 dBFS peak."""

    teach: dict[str, list[Callable[[np.random.Generator], np.ndarray]]]
    test: dict[str, list[tuple[str, Callable[[np.random.Generator], np.ndarray]]]]
    noise_talk: list[Callable[[np.random.Generator], np.ndarray]]
    distractors: list[tuple[str, str, Callable[[np.random.Generator], np.ndarray]]]
    """(kind, source, clip maker)."""
    notes: dict


def _talk(src: Sources, lang: str, key: str, seed: int, words: int = 8):
    def make(rng):
        r = rng_for(seed, "talk", lang, key)
        return normalise(src.espeak(lang, babble_text(r, words), variant=("m1", "m3", "f2", "f4", "m7")[
            int(r.integers(0, 5))], speed=int(r.integers(140, 190)), pitch=int(r.integers(30, 70))))
    return make


def _file(loader, *args, max_s: float = 2.5):
    return lambda rng: normalise(cap(loader(*args), max_s))


def _split_langs(seed: int) -> dict[str, list[str]]:
    langs = list(ESPEAK_LANGS)
    rng_for(seed, "langs").shuffle(langs)
    return {"noise": langs[:6], "test": langs[6:13], "household": langs[13:]}


def _ktuberling(src: Sources, seed: int, n: int):
    words = src.words()
    idx = rng_for(seed, "ktuberling").choice(len(words), size=min(n, len(words)), replace=False)
    return [("word", f"ktuberling/{words[i][0]}/{words[i][1]}", _file(src.word, *words[i])) for i in sorted(idx)]


def _sonic_distractors(src: Sources) -> list[str]:
    return [s for s in src.sonic() if s not in KNOCK_POOL + CHIME_POOL + NOT_DISTRACTORS]


def _effects(src: Sources) -> list[str]:
    return [e for e in src.effects() if e not in NOT_DISTRACTORS]


def _common_distractors(src: Sources, seed: int, langs: list[str]):
    out = [("talk", f"espeak/{lang}/{k}", _talk(src, lang, f"test{k}", seed)) for lang in langs for k in range(3)]
    out += _ktuberling(src, seed, 40)
    out += [("effect", f"hedgewars/{e}", _file(src.effect, e)) for e in _effects(src)]
    out += [("effect", f"sonic-pi/{s}", _file(src.sonic_clip, s)) for s in _sonic_distractors(src)]
    return out


def words_pools(src: Sources, seed: int) -> Pools:
    rng = rng_for(seed, "words", "packs")
    packs = [p for p in src.voice_packs() if WORD_PACKS_EXCLUDE_SUFFIX not in p]
    rng.shuffle(packs)
    teach, test = sorted(packs[:4]), sorted(packs[4:])
    langs = _split_langs(seed)
    word = {"left": WORD_A, "right": WORD_B}
    teach_makers = {lb: [_file(src.voice, p, w) for p in teach] for lb, w in word.items()}
    test_makers = {lb: [(f"{p}/{w}", _file(src.voice, p, w)) for p in test] for lb, w in word.items()}
    other = [ln for ln in src.voice_lines(teach[0]) if ln not in (WORD_A, WORD_B) + NEAR_RHYMES]
    noise_talk = [_talk(src, lang, f"noise{k}", seed, 10) for lang in langs["noise"] for k in range(2)]
    noise_talk += [_file(src.voice, p, ln) for p in teach for ln in other[::7] if (_has_line(src, p, ln))]
    all_test_packs = test + [p for p in src.voice_packs() if WORD_PACKS_EXCLUDE_SUFFIX in p]
    dis = [("near_rhyme", f"{p}/{ln}", _file(src.voice, p, ln)) for p in all_test_packs for ln in NEAR_RHYMES
           if _has_line(src, p, ln)]
    dis += [("talk", f"{p}/{ln}", _file(src.voice, p, ln)) for p in all_test_packs
            for ln in src.voice_lines(p) if ln not in (WORD_A, WORD_B) + NEAR_RHYMES]
    dis += _common_distractors(src, seed, langs["test"])
    return Pools(teach_makers, test_makers, noise_talk, dis,
                 {"left": WORD_A, "right": WORD_B, "teach_packs": teach, "test_packs": test,
                  "noise_langs": langs["noise"], "test_langs": langs["test"]})


def _has_line(src: Sources, pack: str, line: str) -> bool:
    return line in src.voice_lines(pack)


def _knock(src: Sources, name: str):
    def make(rng):
        hit = normalise(src.sonic_clip(name))
        out = np.zeros(0, np.float32)
        for k in range(int(rng.integers(2, 4))):
            if k:
                gap = int(rng.uniform(0.16, 0.28) * SR)
                out = np.concatenate([out, np.zeros(max(0, gap - hit.shape[0]), np.float32)])
            out = np.concatenate([out, hit * db(rng.uniform(-3, 0))])
        return normalise(out)
    return make


def _bell_take(seed: int, take: str):
    """One strike of the seed's bell: its partials (fundamental 500-1500 Hz, fixed per seed) as
    exponentially decaying sines; each take strikes it differently (partial levels ±3 dB, decay
    ±20 %, pitch ±0.5 % — a warmer day), 1.5 s like the sample clips."""
    bell = rng_for(seed, "bell")
    f0 = bell.uniform(500, 1500)
    levels = bell.uniform(-18, 0, len(BELL_PARTIALS))
    levels[0] = 0.0
    decay_s = bell.uniform(0.5, 1.2)
    r = rng_for(seed, "bell", take)
    t = np.arange(int(1.5 * SR)) / SR
    pitch = 1 + r.uniform(-0.005, 0.005)
    out = np.zeros(t.size)
    for k, ratio in enumerate(BELL_PARTIALS):
        # higher partials ring shorter, as in a real bell
        tau = decay_s * r.uniform(0.8, 1.2) / (1 + 0.6 * k)
        gain = 10 ** ((levels[k] + r.uniform(-3, 3)) / 20)
        out += gain * np.exp(-t / tau) * np.sin(2 * np.pi * f0 * ratio * pitch * t + r.uniform(0, 2 * np.pi))
    out *= np.minimum(1.0, t / 0.002)      # a 2 ms strike, not a click
    return lambda rng: normalise(out.astype(np.float32))


def _chime(src: Sources, name: str, seed: int):
    return _bell_take(seed, name) if name in BELL_TAKES else _file(src.sonic_clip, name, max_s=1.5)


def everyday_pools(src: Sources, seed: int) -> Pools:
    rng = rng_for(seed, "everyday", "files")
    knocks = list(KNOCK_FAMILIES[int(rng.integers(len(KNOCK_FAMILIES)))])
    chimes = list(CHIME_FAMILIES[int(rng.integers(len(CHIME_FAMILIES)))])
    rng.shuffle(knocks)
    rng.shuffle(chimes)
    # teach all takes but one, test on the one left out
    langs = _split_langs(seed)
    nk, nc = len(knocks) - 1, len(chimes) - 1
    teach = {"left": [_knock(src, k) for k in sorted(knocks[:nk])],
             "right": [_chime(src, c, seed) for c in sorted(chimes[:nc])]}
    test = {"left": [(f"sonic-pi/{k} x2-3", _knock(src, k)) for k in sorted(knocks[nk:])],
            "right": [(c if c in BELL_TAKES else f"sonic-pi/{c}", _chime(src, c, seed)) for c in sorted(chimes[nc:])]}
    noise_talk = [_talk(src, lang, f"noise{k}", seed, 10) for lang in langs["noise"] for k in range(2)]
    dis = _common_distractors(src, seed, langs["test"])
    dis += [("talk", f"{p}/{ln}", _file(src.voice, p, ln)) for p in src.voice_packs()[::3]
            for ln in src.voice_lines(p)[::5]]
    return Pools(teach, test, noise_talk, dis,
                 {"left": "knock (2-3 dry hits)", "right": "chime", "teach_files": sorted(knocks[:nk]) +
                  sorted(chimes[:nc]), "test_files": sorted(knocks[nk:]) + sorted(chimes[nc:]),
                  "noise_langs": langs["noise"], "test_langs": langs["test"]})


def _snap(src: Sources, lo: float, hi: float, length: tuple[float, float], key: str, seed: int, n: int):
    makers = []
    for k in range(n):
        r = rng_for(seed, "snap", key, str(k))
        f = int(r.uniform(lo, hi))
        d = r.uniform(*length)
        tone = int(r.uniform(lo, hi))
        args = ["synth", f"{d:.3f}", "whitenoise", "synth", f"{d:.3f}", "sine", "amod", str(tone),
                "highpass", str(f), "fade", "q", "0.001", f"{d:.3f}", f"{d * 0.9:.3f}"]
        makers.append((f"sox-snap:hp{f}:{d * 1000:.0f}ms", (lambda a: lambda rng: normalise(src.synth(a)))(args)))
    return makers


def _whistle(src: Sources, lo: float, hi: float, length: tuple[float, float], shape: str, key: str, seed: int,
             n: int):
    makers = []
    for k in range(n):
        r = rng_for(seed, "whistle", key, str(k))
        f0, f1 = int(r.uniform(lo, hi)), int(r.uniform(lo, hi))
        d = r.uniform(*length)
        args = ["synth", f"{d:.3f}", shape, f"{f0}:{f1}", "tremolo", f"{r.uniform(4, 7):.1f}",
                f"{r.uniform(10, 30):.0f}", "fade", "t", "0.04", f"{d:.3f}", "0.08"]
        name = f"sox-whistle-{shape}:{f0}-{f1}Hz:{d:.2f}s"
        makers.append((name, (lambda a: lambda rng: normalise(src.synth(a)))(args)))
    return makers


def snapwhistle_pools(src: Sources, seed: int) -> Pools:
    langs = _split_langs(seed)
    teach = {"left": [m for _, m in _snap(src, 1500, 2500, (0.03, 0.05), "teach", seed, 3)],
             "right": [m for _, m in _whistle(src, 1700, 2300, (0.5, 0.8), "sine", "teach", seed, 3)]}
    # NOTE: the same person's snap and whistle another day: other synthesis draws around the taught
    # ranges (v3 tested whistles at 1.1-3.2 kHz and triangle waves after teaching 1.7-2.3 kHz sines:
    # a different whistler, not the user).
    test = {"left": _snap(src, 1200, 3200, (0.02, 0.06), "test", seed, 8),
            "right": _whistle(src, 1500, 2600, (0.3, 1.0), "sine", "test", seed, 8)}
    noise_talk = [_talk(src, lang, f"noise{k}", seed, 10) for lang in langs["noise"] for k in range(2)]
    dis = _common_distractors(src, seed, langs["test"])
    dis += [("talk", f"{p}/{ln}", _file(src.voice, p, ln)) for p in src.voice_packs()[1::3]
            for ln in src.voice_lines(p)[::5]]
    return Pools(teach, test, noise_talk, dis,
                 {"left": "snap (sox: white noise × sine, highpass, 30-50 ms)",
                  "right": "whistle (sox: sine sweep + tremolo)",
                  "test": "snaps: highpass 1.2-3.2 kHz, 20-60 ms; whistles: 1.5-2.6 kHz sine, 0.3-1 s",
                  "noise_langs": langs["noise"], "test_langs": langs["test"]})


POOLS = {"words": words_pools, "everyday": everyday_pools, "snapwhistle": snapwhistle_pools}
