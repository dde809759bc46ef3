import os
import sys, json, time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from pathlib import Path
import numpy as np
from exp import *
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 7
root = Path.home() / f".cache/edge-slider/roombench/gen-v4-s{seed}"
man = json.loads((root / "words/manifest.json").read_text())
house = json.loads((root / "household.json").read_text())
config = Config()
bz = np.load(os.environ.get("EMB_WORK", "work") + "/bank_emb.npz"); BE = bz["E"]
t0 = time.perf_counter()
tp = str(root / "words" / Path(man["test"]["path"]).name)
events = [Event(**e) for e in man["test"]["events"]]
Et, tt, lvt = emb_of(tp)
H = [(emb_of(str(root / Path(h["path"]).name)), h["duration"]) for h in house]
print("features ready", round(time.perf_counter() - t0, 1), flush=True)
import itertools
KS = [int(a) for a in sys.argv[2].split(",")] if len(sys.argv) > 2 else [6, 8, 12]
HS = [int(a) for a in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 32]
BW = [float(a) for a in sys.argv[4].split(",")] if len(sys.argv) > 4 else [1.0, 4.0]
for k, hidden, bw in itertools.product(KS, HS, BW):
    ex = [hold_examples(lb, str(root / "words" / Path(p).name), k) for lb, p in man["holds"]]
    Xk = np.concatenate([e[0] for e in ex]); y = np.concatenate([e[1] for e in ex])
    print("k", k, "user examples", np.bincount(y, minlength=3), flush=True)

    Xb = context(BE, k) if bw else np.zeros((0, Xk.shape[1]))
    XX = np.concatenate([Xk, Xb]); yy = np.concatenate([y, np.full(len(Xb), 2)])
    w = np.concatenate([np.ones(len(y)), np.full(len(Xb), bw * len(y) / max(1, len(Xb)))])
    # balance user classes
    for c in range(3):
        m = np.arange(len(y))[y == c]; w[m] *= len(y) / (3 * max(1, len(m)))
    t1 = time.perf_counter()
    pred = train_head(XX, yy, w, hidden=hidden, epochs=60)
    tr = time.perf_counter() - t1
    pt = pred(context(Et, k)); ph = [pred(context(e[0], k)) for e, _ in H]
    res = []
    for th in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995):
        d = decide(pt, tt, lvt, th, config)
        s = score.score_stream(d, events, man["test"]["duration"], TAUGHT)
        fh = sum(len(score.merge([x.t for x in decide(p, e[1], e[2], th, config)])) for p, (e, _) in zip(ph, H))
        hours = sum(dur for _, dur in H) / 3600
        res.append((th, round(s["macro_recall"], 2), round(s["false_per_min"], 2), round(fh / hours), s["cross_fire"]))
    pts = [{"threshold": r[0], "macro_recall": r[1], "false_per_min": r[2]} for r in res]
    print(f"k={k} hidden={hidden} bank_w={bw} train {tr:.1f}s", score.sweep_summary(pts), res, flush=True)
