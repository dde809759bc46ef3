"""Experiment record (stop 27; not shipped, not in CI). Usage, from the checkout with PYTHONPATH=$PWD:

    python docs/experiments/more-voices.py N_TEACH N_HOLDS SEEDS WORK_DIR   (4 0 1,2,3 /tmp/vw; 6 6 1,2,3 /tmp/vw)

 does teaching words from more voices (more holds) help? Test on the same 4 held-out packs."""
import sys, json, io, contextlib, dataclasses
from pathlib import Path
from edge.tooling.roombench import families, scenarios, run
from edge.tooling.roombench.scenarios import (Scenario, rng_for, make_hold, make_noise_hold, make_test_stream, write_wav)
N_TEACH, N_HOLDS = int(sys.argv[1]), int(sys.argv[2])
orig = families.words_pools

def words_pools(src, seed):
    rng = rng_for(seed, "words", "packs")
    packs = [p for p in src.voice_packs() if families.WORD_PACKS_EXCLUDE_SUFFIX not in p]
    rng.shuffle(packs)
    # the bench's own pools, with teach = the first N_TEACH packs and test = packs[6:] (4 packs)
    teach, test = sorted(packs[:N_TEACH]), sorted(packs[6:])
    pools = orig(src, seed)
    word = {"left": families.WORD_A, "right": families.WORD_B}
    pools.teach = {lb: [families._file(src.voice, q, w) for q in teach] for lb, w in word.items()}
    pools.test = {lb: [(f"{q}/{w}", families._file(src.voice, q, w)) for q in test] for lb, w in word.items()}
    pools.notes = dict(pools.notes, teach_packs=teach, test_packs=test)
    return pools

scenarios.POOLS["words"] = words_pools

def build_scenario(src, name, seed, sizes, root):
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    pools = scenarios.POOLS[name](src, seed)
    rng = rng_for(seed, name, "holds")
    holds = []
    for label in ("left", "right", "noise"):
        n = int(rng.integers(3, 5))
        n = N_HOLDS if label != "noise" and N_HOLDS else n
        for k in range(n):
            seconds = rng.uniform(3.0, 4.0)
            if label == "noise":
                buf = make_noise_hold(rng, pools.noise_talk if k % 2 else None, seconds)
            else:
                t = pools.teach[label]
                buf = make_hold(rng, t[k % len(t):] + t[:k % len(t)], seconds)
            path = out / f"hold-{label}-{k}.wav"
            write_wav(path, buf)
            holds.append((label, str(path)))
    test = make_test_stream(src, pools, rng_for(seed, name, "test"), sizes, seed, out / "test.wav")
    return Scenario(name, seed, holds, test, pools.notes)

run.build_scenario = build_scenario
from edge.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    main(["bench", "--room", "--seeds", sys.argv[3], "--json", "--scenario", "words", "--work", sys.argv[4]])
d = json.loads(buf.getvalue())
for r in d["runs"]:
    print(N_TEACH, N_HOLDS, r["seed"], r["notes"]["teach_packs"], r["notes"]["test_packs"], "calibrated",
          round(r["test"]["macro_recall"], 2), round(r["test"]["false_per_min"], 2), round(r["household"]["false_per_hour"]),
          {k: (v and round(v["macro_recall"], 2)) for k, v in r["best_within"].items()}, flush=True)
s = d["scenarios"]["words"]
print(N_TEACH, N_HOLDS, "MEDIAN", round(s["macro_recall"], 2), round(s["false_per_min"], 2), round(s["household_per_hour"]),
      {k: (v and round(v["macro_recall"], 2)) for k, v in s["best_within"].items()}, flush=True)
