"""What one hop costs in CPU instructions (machine-independent), and what machine a bench ran on.

Seconds measured under qemu user emulation say little about a Pi, and a VM's clock wanders; an
instruction count does not. ``valgrind --tool=callgrind`` counts every instruction the process
executes, the same figure on a loaded or an idle machine. The daemon's start-up (imports, model
load) dwarfs one hop, so the tool runs the real loop twice, for ``short`` and ``long`` hops, and
divides the difference: start-up cancels out.

The Pi estimates divide by a clock and an assumed instructions-per-cycle (IPC) figure for
interpreter-heavy code; they are estimates, printed with their assumptions, never measurements.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from edge.audio import synth
from edge.config import SAMPLE_RATE
from edge.tooling.machine import machine

HOP_US = 1024 / SAMPLE_RATE * 1e6

#: name → (GHz, assumed IPC for CPython + numpy + the TFLite kernel; in-order A53 < out-of-order A72)
PI_ESTIMATES = {"pi4": (1.8, 1.0), "pi_zero2w": (1.0, 0.6)}


def run_hops(state_dir: Path, hops: int) -> None:
    """The loop being counted: the trained demo device, listening, fed ``hops`` hops of the test scene."""
    from edge.service import RunOptions, Service
    from edge.tooling.demo import TEST_SCENE, demo_config
    scene, _ = synth.render(TEST_SCENE, seed=4242, gain_db=-4.0)
    with Service(demo_config(state_dir), RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as svc:
        svc.engine.set_listening(True)
        done = 0
        while done < hops:
            for i in range(0, scene.shape[0] - 1024 + 1, 1024):
                if done == hops:
                    break
                svc.engine.process(scene[i:i + 1024])
                done += 1


def _count(state_dir: Path, hops: int) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, "-m", "edge.tooling.hop_cost", str(state_dir), str(hops)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if out.returncode != 0 or not found:
        tail = out.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"valgrind run failed (rc {out.returncode}): {' | '.join(tail)}")
    return int(found.group(1))


def measure_instructions(short: int = 100, long: int = 600,
                         progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Instructions per hop of the whole listening pipeline, and Pi estimates from them."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind not installed: sudo apt install valgrind")
    from edge.tooling.demo import train_demo_model
    with tempfile.TemporaryDirectory(prefix="edge-hopcost-") as tmp:
        progress("teaching the demo model ...")
        train_demo_model(Path(tmp))
        counts = {}
        for hops in (short, long):
            progress(f"counting instructions for {hops} hops under valgrind (a minute or two) ...")
            counts[hops] = _count(Path(tmp), hops)
    per_hop = (counts[long] - counts[short]) / (long - short)
    figures: dict[str, Any] = {**machine(), "instructions_per_hop": per_hop,
                               "instructions_startup": counts[short] - short * per_hop}
    for name, (ghz, ipc) in PI_ESTIMATES.items():
        us = per_hop / (ghz * 1e3 * ipc)
        figures[f"{name}_us_per_hop_estimate"] = us
        figures[f"{name}_pct_of_hop_estimate"] = 100 * us / HOP_US
        figures[f"{name}_assumption"] = f"{ghz} GHz × IPC {ipc}"
    return figures


if __name__ == "__main__":  # the counted child: python -m edge.tooling.hop_cost STATE_DIR HOPS
    run_hops(Path(sys.argv[1]), int(sys.argv[2]))
