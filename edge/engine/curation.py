"""Curating the examples on the loop thread: delete a class or a session, move a session, discard the last.

The console's Curate list, ``cmd/delete``, ``cmd/move`` and the discard button ask for these. Each
re-reads the counts for the state report and publishes what changed; none runs during a training
(:mod:`edge.engine.modes`).
"""

from __future__ import annotations

from typing import Any

from edge.errors import CommandError
from edge.events import ExamplesDeleted, ExamplesMoved
from edge.engine.modes import ModeMachine


class Curation:
    def __init__(self, engine: Any):
        self._engine = engine       # typed Any: the engine imports this module
        self._config, self._store, self._bus = engine.config, engine.store, engine.bus
        self._modes: ModeMachine = engine.modes

    def delete(self, label: str | None, session: str | None) -> dict[str, Any]:
        if label is None and session is None:
            raise CommandError("delete needs a label or a session")
        if label is not None:
            self._engine._check_label(label)
        self._modes.allow("delete examples")
        n = self._store.delete(label=label, session=session)
        counts = self._engine._refresh_counts()
        self._bus.publish(ExamplesDeleted(n, label, session, counts))
        return {"deleted": n, "counts": counts}

    def move_session(self, session: str, label: str) -> dict[str, Any]:
        """Move a session to ``label``; its quiet windows stay background (unless it is all background)."""
        self._engine._check_label(label)
        self._modes.allow("delete examples", "move examples")
        background = self._config.background_label
        rows = [r for r in self._store.sessions() if r["session"] == session]
        if not rows:
            raise CommandError(f"no session {session!r}: see the console's Curate list or `edge-slider dataset stats`")
        only_background = all(r["label"] == background for r in rows)
        n = self._store.relabel(session, label, keep=None if only_background else background)
        counts = self._engine._refresh_counts()
        self._bus.publish(ExamplesMoved(n, session, label, counts))
        return {"moved": n, "session": session, "label": label, "counts": counts}

    def discard_last(self) -> dict[str, Any]:
        session = self._store.last_session()
        if session is None:
            self._modes.refuse("discard last session", "nothing collected yet")
        return self.delete(None, session)
