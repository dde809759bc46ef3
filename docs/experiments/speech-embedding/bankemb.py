"""Negative bank of embeddings from the same allowed sources as edge/data/background_bank.npz."""
import os
import sys, glob, subprocess
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from pathlib import Path
import numpy as np
import feats
from edge.tooling.build_bank import SOURCES, ESPEAK_LANGS, ESPEAK_TEXT, _order, decode

def build(out=os.environ.get("EMB_WORK", "work") + "/bank_emb.npz"):
    Es, src, clip = [], [], []
    k = 0
    for si, s in enumerate(SOURCES):
        paths = _order([p for g in s.globs for p in glob.glob(g, recursive=True)])
        total = 0.0
        for p in paths:
            if total >= s.budget_s * 2: break
            try: x = decode(p)[: int(8 * 44100)]
            except subprocess.CalledProcessError: continue
            if len(x) < 44100 * 0.9:
                x = np.concatenate([x, np.zeros(int(44100 * 0.9) - len(x) + 4410, np.float32)])
            pk = np.abs(x).max()
            if pk < 1e-4: continue
            x = x / pk * 0.3
            E, t = feats.embeddings(x)
            Es.append(E); src += [si] * len(E); clip += [k] * len(E); k += 1
            total += len(x) / 44100
        print(s.name, total, flush=True)
    for i, lang in enumerate(ESPEAK_LANGS):
        wav = os.environ.get("EMB_WORK", "work") + f"/espeak-{lang}.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-p", str(30 + 7 * (i % 6)), "-s", str(140 + 8 * (i % 4)),
                        "-w", wav, ESPEAK_TEXT], capture_output=True, check=True)
        x = decode(wav); x = x / np.abs(x).max() * 0.3
        E, t = feats.embeddings(x)
        Es.append(E); src += [3] * len(E); clip += [k] * len(E); k += 1
    np.savez(out, E=np.concatenate(Es), src=np.array(src), clip=np.array(clip))
    print("bank", sum(len(e) for e in Es))

if __name__ == "__main__":
    build()
