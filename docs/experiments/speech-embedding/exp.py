"""Experiment (dev only; see README.md here): few-shot head on a frozen speech embedding vs today's model, words scenario."""
import os
import sys, json, glob, time, hashlib, subprocess
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from pathlib import Path
import numpy as np
import feats
from edge.audio.wavfile import read_wav
from edge.config import Config
from edge.tooling.roombench import score
from edge.tooling.roombench.scenarios import Event

CACHE = Path(os.environ.get("EMB_WORK", "work") + "/cache"); CACHE.mkdir(parents=True, exist_ok=True)
TAUGHT = ("left", "right")
LABELS = ("left", "right", "noise")

def emb_of(path):
    key = CACHE / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".npz")
    if key.is_file():
        z = np.load(key); return z["E"], z["t"], z["lv"]
    x = read_wav(path).astype(np.float32)
    E, t = feats.embeddings(x)
    lv = level_at(x, t)
    np.savez(key, E=E, t=t, lv=lv); return E, t, lv

def level_at(x, t, win=0.093):
    out = []
    for te in t:
        b = int(te * 44100); a = max(0, b - int(win * 44100))
        seg = x[a:b]
        out.append(10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-12) if len(seg) else -120)
    return np.array(out)

def segments(x, sr=44100):
    hop = 441
    n = len(x) // hop
    db = 10 * np.log10(np.mean(x[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    floor = np.percentile(db, 10)
    act = db > floor + 12
    segs, i = [], 0
    while i < n:
        if act[i]:
            j = i
            while j < n and act[j]: j += 1
            segs.append([i * 0.01, j * 0.01]); i = j
        else: i += 1
    merged = []
    for s in segs:
        if merged and s[0] - merged[-1][1] < 0.15: merged[-1][1] = s[1]
        else: merged.append(s)
    return [s for s in merged if s[1] - s[0] >= 0.08]

def hold_examples(label, path, k=1):
    win = 0.775 + 0.08 * (k - 1)
    E, t, _ = emb_of(path)
    E = context(E, k)
    if label == "noise":
        return E, np.full(len(E), 2)
    segs = segments(read_wav(path))
    y = np.full(len(E), -1)
    for i, te in enumerate(t):
        ts = te - win
        ov = [max(0, min(te, b) - max(ts, a)) for a, b in segs]
        if max(ov, default=0) == 0:
            y[i] = 2
            continue
        for (a, b), o in zip(segs, ov):
            if o >= 0.85 * (b - a) and b - 0.05 <= te <= b + 0.35:
                y[i] = LABELS.index(label)
    keep = y >= 0
    return E[keep], y[keep]

def bank(paths_fn):
    out = []
    for p in paths_fn():
        E, _, _ = emb_of(p)
        out.append(E)
    return np.concatenate(out)

def context(E, k):
    if k == 1: return E
    pad = np.concatenate([np.repeat(E[:1], k - 1, 0), E])
    return np.concatenate([pad[i:i + len(E)] for i in range(k)], axis=1)

def train_head(X, y, w, hidden=0, epochs=300, lr=0.01, l2=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xn = (X - mu) / sd
    d, C = X.shape[1], 3
    params = {}
    if hidden:
        params["W1"] = rng.normal(0, 1 / np.sqrt(d), (d, hidden)); params["b1"] = np.zeros(hidden)
        params["W2"] = rng.normal(0, 1 / np.sqrt(hidden), (hidden, C)); params["b2"] = np.zeros(C)
    else:
        params["W2"] = np.zeros((d, C)); params["b2"] = np.zeros(C)
    m = {k: np.zeros_like(v) for k, v in params.items()}; v2 = {k: np.zeros_like(v) for k, v in params.items()}
    Y = np.eye(C)[y]
    n = len(X); bs = 256; step = 0
    for ep in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]; xb = Xn[idx]; yb = Y[idx]; wb = w[idx][:, None]
            h = np.maximum(0, xb @ params["W1"] + params["b1"]) if hidden else xb
            z = h @ params["W2"] + params["b2"]; z -= z.max(1, keepdims=True)
            p = np.exp(z); p /= p.sum(1, keepdims=True)
            g = (p - yb) * wb / wb.sum()
            grads = {"W2": h.T @ g + l2 * params["W2"], "b2": g.sum(0)}
            if hidden:
                gh = (g @ params["W2"].T) * (h > 0)
                grads["W1"] = xb.T @ gh + l2 * params["W1"]; grads["b1"] = gh.sum(0)
            step += 1
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]; v2[k] = 0.999 * v2[k] + 0.001 * grads[k] ** 2
                params[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v2[k] / (1 - 0.999 ** step)) + 1e-8)
    def predict(Xq):
        xq = (Xq - mu) / sd
        h = np.maximum(0, xq @ params["W1"] + params["b1"]) if hidden else xq
        z = h @ params["W2"] + params["b2"]; z -= z.max(1, keepdims=True)
        p = np.exp(z); return p / p.sum(1, keepdims=True)
    return predict

def decide(probs, t, lv, th, config):
    trace = {"labels": np.array(LABELS), "probs": probs, "t": t, "level_db": lv}
    return score.replay(trace, config.listen, config.classes, [th])[th]
