"""A/B of the calibration's threshold allocation (stop 28): `even` (the old per-class halves) vs `joint` (today's).

Usage: PYTHONPATH=. python docs/experiments/calibration-allocation.py even|joint bench --room --seeds 1,2,3 --json
"""
import sys
import numpy as np
import edge.model.calibrate as cal
from edge.cli import main

def even(rates, recalls, budget):
    share = budget / max(1, len(rates))
    picks, ok = [], True
    for r, rec in zip(rates, recalls):
        o = np.flatnonzero(r <= share + 1e-9)
        k = int(o[0]) if o.size else len(r) - 1
        if rec is not None and rec[0] > 0:
            k = min(k, int(np.flatnonzero(rec >= cal.KEEP_RECALL * rec[0])[-1]))
        ok = ok and bool(r[k] <= share + 1e-9)
        picks.append(k)
    return picks, ok

mode = sys.argv[1]
if mode == "even":
    cal.allocate = even
sys.exit(main(sys.argv[2:]))
