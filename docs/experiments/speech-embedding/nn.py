import sys, json; sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from pathlib import Path
import numpy as np
from exp import *
root = Path.home() / ".cache/edge-slider/roombench/gen-v4-s7"
man = json.loads((root / "words/manifest.json").read_text())
for k in (1, 4, 8, 12):
    ex = [hold_examples(lb, str(root / "words" / Path(p).name), k) for lb, p in man["holds"]]
    X = np.concatenate([e[0] for e in ex]); y = np.concatenate([e[1] for e in ex])
    P = X[y < 2]; Py = y[y < 2]
    Pn = P / np.linalg.norm(P, axis=1, keepdims=True)
    Et, tt, _ = emb_of(str(root / "words" / Path(man["test"]["path"]).name)); Et = context(Et, k)
    En = Et / np.linalg.norm(Et, axis=1, keepdims=True)
    ok = tot = 0
    for e in man["test"]["events"]:
        if e["label"] not in TAUGHT: continue
        m = (tt >= e["offset"] - 0.05) & (tt <= e["offset"] + 0.25)
        if not m.any(): continue
        sims = En[m] @ Pn.T  # windows x train
        j = np.unravel_index(np.argmax(sims), sims.shape)
        ok += LABELS[Py[j[1]]] == e["label"]; tot += 1
    print("k", k, "1-NN left/right accuracy on test events", ok, "/", tot)
