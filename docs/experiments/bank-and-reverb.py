"""A/B of the background bank and of reverb augmentation (issue 12, stop 29).

Usage (from the repository root):

    git show ee886df:edge/data/background_bank.npz > /tmp/bank-v1.npz     # the v1 bank (no game sounds)
    git show ee886df:edge/data/background_bank.json > /tmp/bank-v1.json
    PYTHONPATH=. python docs/experiments/bank-and-reverb.py /tmp/bank-v1.npz bench --room --seeds 4,5,7 --json
    REVERB=0.3 PYTHONPATH=. python docs/experiments/bank-and-reverb.py shipped bench --room --seeds 4,5,7 --json

The first argument is a bank .npz (its .json beside it) or ``shipped``; the rest is the CLI.
``REVERB``, ``RATIO`` override ``train.reverb_prob`` and ``train.bank_ratio`` for every training.
"""
import os
import sys
from pathlib import Path

import edge.model.bank as bank
import edge.model.pipeline as pipeline
from edge.cli import main

if sys.argv[1] != "shipped":
    bank.BANK_PATH = Path(sys.argv[1])
_recipe = pipeline.recipe_from_config


def recipe(config, preset=None, **overrides):
    r = _recipe(config, preset, **overrides)
    changes = {}
    if os.environ.get("REVERB"):
        changes["reverb_prob"] = float(os.environ["REVERB"])
    if os.environ.get("RATIO"):
        changes["bank_ratio"] = float(os.environ["RATIO"])
    return pipeline.Recipe(**{**r.__dict__, **changes})


pipeline.recipe_from_config = recipe
sys.exit(main(sys.argv[2:]))
