"""The room benchmark (issue 12): taught like a user would, scored on a lived-in room's sounds.

``sources`` decodes the allowed Debian sounds (cached), ``scenarios`` builds holds and streams from
them deterministically (``families``: what each scenario teaches and tests with; ``mix``: seeded
randomness, room tone, the mixer), ``run`` drives the real CLI (collect → train → listen --trace),
``score`` turns decisions into recall / false moves, ``report`` prints them. The daemon never imports this.
"""
