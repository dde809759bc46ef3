"""A/B of any training-recipe field on the room bench (issue 12, stop 30: bank_class, depth).

Usage (from the repository root):

    RECIPE=bank_class=1 PYTHONPATH=. python docs/experiments/recipe.py bench --room --seeds 4,5,7 --json
    RECIPE=depth=16,reverb_prob=0.3 PYTHONPATH=. python docs/experiments/recipe.py bench --room --json

``RECIPE`` overrides fields of :class:`edge.model.train.Recipe` for every training the CLI runs
(booleans as 0/1). Two runs side by side on 2 cores: set ``OPENBLAS_NUM_THREADS=1`` for both, or the
trainings fight over the cores (4-10x slower). The thread count changes float summation order and so
the trained model: compare runs made with the same setting.
"""
import dataclasses
import os
import sys

import edge.model.pipeline as pipeline
from edge.cli import main

_recipe = pipeline.recipe_from_config


def recipe(config, preset=None, **overrides):
    r = _recipe(config, preset, **overrides)
    changes = {}
    for item in filter(None, os.environ.get("RECIPE", "").split(",")):
        name, value = item.split("=")
        current = getattr(r, name)
        changes[name] = bool(int(value)) if isinstance(current, bool) else type(current)(value)
    return dataclasses.replace(r, **changes)


pipeline.recipe_from_config = recipe
sys.exit(main(sys.argv[1:]))
