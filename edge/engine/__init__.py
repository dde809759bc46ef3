"""The loop that owns the device: the Engine and its parts, all run on the one loop thread.

Engine (core.py) joins them; hop_pipeline.py is the per-hop path (frames, window, classifier, policy,
slider); hold_control.py, model_keeper.py and curation.py answer the requests; modes.py is the one table
of transitions and refusals; loop.py the call queue other threads use."""
