"""Builds the background bank shipped in edge/data/: negative examples nobody taught the device.

    python -m edge.tooling.build_bank [--out edge/data] [--check]

A device taught from a few button holds has only ever heard its own room; every sound it was not
taught then lands in *some* class, confidently (the room benchmark measured median scores of
0.9–0.99 on false moves). The bank is ~20 minutes of talk in 13 languages, music, instruments and
effects, kept as front-end frames (the exact BROWSER_FFT dB, quantised to 0.5 dB in a uint8), and
every training mixes it in as background (see edge/teach/bank.py).

Reproducible: the sources are Debian packages, files are picked by a hash of their path (no
randomness), and the manifest records the builder version, every file used and the sha256 of the
frames. Sources are chosen so the room benchmark (edge/tooling/roombench) never hears any of them, and
none of the packages reserved for held-out testing is read.

Licences of the sources (all redistributable; the bank holds magnitude spectra, not audio):
tuxpaint-stamps-default (GPL-2+ / CC), lmms-common (GPL-2+), sonic-pi-samples (CC0),
wesnoth-1.16-data (GPL-2+), ufoai-sound (GPL-2+ / CC-BY(-SA) 3.0 / public domain; the manifest
names every file used, which is their attribution), espeak-ng (GPL-3+, synthesised speech).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.audio.spectrogram import frames_db
from edge.config import NUM_BINS, SAMPLE_RATE

log = logging.getLogger("edge.tooling.build_bank")

BUILDER_VERSION = 2
Q_OFFSET_DB = 128.0
"""Stored byte q ↔ dB = q / 2 − 128: 0.5 dB steps over −128 … −0.5 dB (a BROWSER_FFT bin of a
full-scale sine peaks near −14 dB; below −128 dB is far under any microphone's noise)."""
NOMINAL_DB = -30.0
"""Each clip is scaled so its loud windows (90th percentile of frame band power) sit here;
training then shifts bank windows by a random gain around it."""


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    """The Debian package the files come from (named in the error when they are missing)."""
    globs: tuple[str, ...]
    budget_s: float
    max_file_s: float = 6.0
    archive: str | None = None
    """A zip (a game's .pk3) whose members the globs match; None: the globs are file paths."""


WESNOTH = "/usr/share/games/wesnoth/1.16/data/core/sounds"
UFOAI = "/usr/share/games/ufoai/base/0snd.pk3"
SOURCES = (
    Source("speech", "tuxpaint-stamps-default", ("/usr/share/tuxpaint/stamps/**/*_desc_*.ogg",), 540.0, 5.0),
    Source("instruments", "lmms-common", ("/usr/share/lmms/samples/*/*.ogg", "/usr/share/lmms/samples/*/*.flac",
                                          "/usr/share/lmms/samples/*/*.wav"), 150.0, 3.0),
    Source("music_fx", "sonic-pi-samples", tuple(f"/usr/share/sonic-pi/samples/{p}_*.flac" for p in (
        "ambi", "bass", "loop", "guit", "misc", "vinyl", "glitch", "mehackit")), 180.0, 4.0),
    # Game effects, acted voices (hits, shouts, grunts), weapons, footsteps, doors, and ambience
    # (builder v2): the confident false moves the room bench blamed were mostly of this kind and
    # the v1 bank had none. From two games the room bench never plays. Each is a sixth of the
    # bank at most: 200 s of each (a third of the bank) cost taught knocks their recall.
    Source("game_fx", "wesnoth-1.16-data", (f"{WESNOTH}/*.ogg", f"{WESNOTH}/*.wav"), 100.0, 3.0),
    # NOTE: in an archive a glob's * also matches "/": sound/aliens/* takes its subfolders too
    Source("game_fx2", "ufoai-sound", tuple(f"sound/{d}/*.{ext}" for ext in ("ogg", "wav") for d in (
        "weapons", "impact", "footsteps", "doors", "misc", "soldiers", "civilians", "aliens", "ugv")),
        100.0, 3.0, archive=UFOAI),
    Source("ambience", "ufoai-sound", ("sound/ambience/*.ogg", "sound/ambience/*.wav"), 60.0, 6.0, archive=UFOAI),
)
ESPEAK_LANGS = ("de", "fr-fr", "es", "it", "pt", "pl", "ru", "cs", "ro", "hu", "tr", "el", "fi")
ESPEAK_TEXT = ("Maria and Paolo went to the market on Sunday, bought bread, tomatoes and a melon, "
               "and talked for an hour about music, football and the weather.")
ESPEAK_BUDGET_S = 150.0


def _order(paths: list[str]) -> list[str]:
    """Deterministic, well-mixed order: by a hash of the path (directories and languages interleave)."""
    return sorted(set(paths), key=lambda p: hashlib.sha1(p.encode()).hexdigest())


def decode(path: str) -> np.ndarray:
    """Any file sox reads → 44.1 kHz mono float32."""
    r = subprocess.run(["sox", path, "-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1", "-e", "floating-point",
                        "-b", "32", "-"], capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype=np.float32)


def clip_frames(samples: np.ndarray, max_s: float) -> np.ndarray:
    """Frames of one clip at the nominal level, digital silence dropped, quantised to uint8."""
    samples = samples[:int(max_s * SAMPLE_RATE)]
    fr = frames_db(samples)
    if fr.shape[0] < 3:
        return np.empty((0, NUM_BINS), np.uint8)
    power = 10 * np.log10(np.mean(10 ** (fr.astype(np.float64) / 10), axis=1))
    audible = power > -100.0
    if audible.sum() < 3:
        return np.empty((0, NUM_BINS), np.uint8)
    fr = fr[audible] + (NOMINAL_DB - float(np.percentile(power[audible], 90)))
    return np.clip(np.round((fr + Q_OFFSET_DB) * 2), 0, 255).astype(np.uint8)


def _espeak_clips(workdir: Path):
    per_lang = ESPEAK_BUDGET_S / len(ESPEAK_LANGS)
    for i, lang in enumerate(ESPEAK_LANGS):
        wav = workdir / f"espeak-{lang}.wav"
        # pitch and speed vary by language index, deterministically: more than one "speaker"
        subprocess.run(["espeak-ng", "-v", lang, "-p", str(30 + 7 * (i % 6)), "-s", str(140 + 8 * (i % 4)),
                        "-w", str(wav), ESPEAK_TEXT], capture_output=True, check=True)
        yield f"espeak-ng:{lang}", decode(str(wav)), per_lang


def _paths(src: Source, workdir: Path) -> list[tuple[str, str]]:
    """(name for the manifest, file to decode) of every file a source's globs match, in bank order."""
    import glob
    if src.archive is None:
        return [(p, p) for p in _order([p for g in src.globs for p in glob.glob(g, recursive=True)])]
    import fnmatch
    import zipfile
    if not Path(src.archive).is_file():
        return []
    with zipfile.ZipFile(src.archive) as z:
        members = _order([m for m in z.namelist() if any(fnmatch.fnmatch(m, g) for g in src.globs)])
        out = []
        for m in members:
            # NOTE: extracted under a hash of the member's name: a member path never escapes workdir
            dest = workdir / (hashlib.sha1(m.encode()).hexdigest()[:16] + Path(m).suffix)
            dest.write_bytes(z.read(m))
            out.append((f"{src.archive}!{m}", str(dest)))
    return out


def build(workdir: Path) -> tuple[dict[str, np.ndarray], dict]:
    clips: list[np.ndarray] = []
    clip_source: list[int] = []
    manifest_sources = []
    names = [s.name for s in SOURCES] + ["speech_tts"]
    for si, src in enumerate(SOURCES):
        paths = _paths(src, workdir)
        if not paths:
            raise SystemExit(f"build_bank: no files for {src.name} ({src.archive or ', '.join(src.globs)}): "
                             f"apt install {src.package}")
        used, total = [], 0.0
        for p, file in paths:
            if total >= src.budget_s:
                break
            try:
                fr = clip_frames(decode(file), src.max_file_s)
            except subprocess.CalledProcessError:
                log.warning("skipped %s: sox cannot read it", p)
                continue
            if fr.shape[0] == 0:
                continue
            clips.append(fr)
            clip_source.append(si)
            used.append(p)
            total += fr.shape[0] * 1024 / SAMPLE_RATE
        log.info("%s: %d files, %.0f s", src.name, len(used), total)
        manifest_sources.append({"name": src.name, "files": used, "seconds": round(total, 1)})
    if shutil.which("espeak-ng") is None:
        raise SystemExit("build_bank: espeak-ng is missing (apt install espeak-ng)")
    used, total = [], 0.0
    for tag, samples, budget in _espeak_clips(workdir):
        fr = clip_frames(samples, budget)
        clips.append(fr)
        clip_source.append(len(SOURCES))
        used.append(tag)
        total += fr.shape[0] * 1024 / SAMPLE_RATE
    log.info("speech_tts: %d voices, %.0f s", len(used), total)
    manifest_sources.append({"name": "speech_tts", "files": used, "seconds": round(total, 1)})
    frames = np.concatenate(clips)
    starts = np.cumsum([0] + [c.shape[0] for c in clips])[:-1].astype(np.int32)
    arrays = {"frames": frames, "clip_start": starts, "clip_source": np.array(clip_source, np.int16),
              "source_names": np.array(names)}
    manifest = {"builder_version": BUILDER_VERSION, "frames": int(frames.shape[0]), "clips": len(clips),
                "seconds": round(frames.shape[0] * 1024 / SAMPLE_RATE, 1), "nominal_db": NOMINAL_DB,
                "q_offset_db": Q_OFFSET_DB, "sha256": hashlib.sha256(frames.tobytes()).hexdigest(),
                "sources": manifest_sources}
    return arrays, manifest


def main(argv: list[str] | None = None) -> int:
    import tempfile
    ap = argparse.ArgumentParser(prog="python -m edge.tooling.build_bank", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data"),
                    help="output folder (default: the package's edge/data)")
    ap.add_argument("--check", action="store_true", help="rebuild and compare with the shipped bank; write nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        arrays, manifest = build(Path(tmp))
    out = Path(args.out)
    if args.check:
        shipped = json.loads((out / "background_bank.json").read_text())
        same = shipped["sha256"] == manifest["sha256"]
        print(f"bank {'matches' if same else 'DIFFERS from'} the shipped one ({manifest['frames']} frames)")
        return 0 if same else 1
    from edge.fileio import atomic_write_bytes
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "background_bank.npz", buf.getvalue())
    atomic_write_bytes(out / "background_bank.json", (json.dumps(manifest, indent=1) + "\n").encode())
    print(f"wrote {out / 'background_bank.npz'}: {manifest['frames']} frames, {manifest['seconds']} s, "
          f"{len(buf.getvalue()) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
