"""The console's read-only views of the store and the registry: sessions, a session's spectrogram,
the model history with the serving model's held-out report.

Every store or registry read runs on the loop thread through ``engine.call`` (the SQLite connection
belongs to it); only the shaping of what came back (grouping, quantising) runs on the HTTP thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.model.calibrate import report_in

MAX_WINDOWS = 1500
"""Windows drawn per session: a hold is a few hundred; an imported file may hold thousands."""


class NotFound(Exception):
    """The request names something that is not there (404)."""


def sessions(engine: Any) -> list[dict[str, Any]]:
    """One entry per session, oldest first: its labels with counts, total, source, created."""
    rows = engine.call(lambda: engine.store.sessions())
    out: dict[str, dict[str, Any]] = {}
    background = engine.config.background_label
    for r in rows:
        s = out.setdefault(r["session"], {"session": r["session"], "labels": {}, "count": 0,
                                          "source": r["source"], "created": r["created"]})
        s["labels"][r["label"]] = r["count"]
        s["count"] += r["count"]
        s["created"] = min(s["created"], r["created"])
    for s in out.values():
        # NOTE: the hold's class is its non-background label; a background hold is only background.
        sound = {lb: n for lb, n in s["labels"].items() if lb != background} or s["labels"]
        s["label"] = max(sound, key=sound.__getitem__)
    return list(out.values())


def audio(engine: Any, holds: Any, session: str) -> bytes:
    """The session's hold audio as WAV bytes, while the session is in the store and its audio kept."""
    path = holds.path(session)
    if path is None or not engine.call(lambda: engine.store.session_windows(session, 1)):
        raise NotFound(f"no audio kept for session {session!r} (web.hold_audio_mb keeps the newest holds; "
                       "imported and older sessions have none)")
    try:
        return path.read_bytes()
    except OSError:
        raise NotFound(f"the audio of session {session!r} was just pruned") from None


def spectrogram(engine: Any, session: str) -> dict[str, Any]:
    """A session's windows as int dB frames (each window's newest frame), in time order."""
    rows = engine.call(lambda: engine.store.session_windows(session, MAX_WINDOWS))
    if not rows:
        raise NotFound(f"no session {session!r}: GET /api/sessions lists them")
    order = _time_order([w for _, w in rows])
    frames = np.rint(np.stack([rows[i][1][-1] for i in order])).astype(np.int32)
    return {"session": session, "bins": int(frames.shape[1]), "frames": frames.tolist(),
            "labels": [rows[i][0] for i in order], "background": engine.config.background_label,
            "min": int(frames.min()), "max": int(frames.max()), "truncated": len(rows) >= MAX_WINDOWS}


def _time_order(windows: list[np.ndarray]) -> list[int]:
    """The store keeps a hold's sound before its quiet windows; consecutive hops share two frames,
    so window j follows window i when j's first two frames are i's last two: follow those links."""
    head = {w[:2].tobytes(): i for i, w in enumerate(windows)}
    succ = [head.get(w[1:].tobytes()) for w in windows]
    has_pred = {j for i, j in enumerate(succ) if j is not None and j != i}
    seen: set[int] = set()
    order: list[int] = []
    for start in [i for i in range(len(windows)) if i not in has_pred] + list(range(len(windows))):
        i: int | None = start
        while i is not None and i not in seen:
            seen.add(i)
            order.append(i)
            i = succ[i]
    return order


def model_info(engine: Any) -> dict[str, Any]:
    """Versions kept, the one serving, and its held-out confusion and false-move estimate."""
    def read() -> tuple[list[int], Any]:
        return engine.registry.versions(), engine.classifier
    versions, clf = engine.call(read)
    meta = getattr(clf, "metadata", None) or {}
    decision = report_in(meta)
    return {"versions": versions, "current": getattr(clf, "version", None) if clf else None,
            "labels": meta.get("labels"), "heldout": meta.get("heldout"),
            "false_per_min_estimate": decision.get("estimated_false_per_min"),
            "max_false_per_min": decision.get("max_false_per_min")}
