"""In-memory fakes for unit tests of the engine (the real backends have their own tests)."""

from __future__ import annotations

import numpy as np


class FakeStore:
    def __init__(self):
        self.rows: list[tuple[str, np.ndarray, str, str]] = []
        self.fail: Exception | None = None

    def add_many(self, label, windows, source, session):
        return self.add_groups([(label, windows)], source, session)[0]

    def add_groups(self, groups, source, session):
        if self.fail:
            raise self.fail
        for label, windows in groups:
            self.rows.extend((label, w.copy(), source, session) for w in windows)
        return [len(windows) for _, windows in groups]

    def counts(self):
        out: dict[str, int] = {}
        for label, *_ in self.rows:
            out[label] = out.get(label, 0) + 1
        return out

    def delete(self, label=None, session=None):
        keep = [r for r in self.rows if not (label and r[0] == label or session and r[3] == session)]
        n = len(self.rows) - len(keep)
        self.rows = keep
        return n

    def last_session(self):
        return self.rows[-1][3] if self.rows else None

    def sessions(self):
        groups: dict[tuple[str, str], int] = {}
        for label, _, _, session in self.rows:
            groups[(session, label)] = groups.get((session, label), 0) + 1
        return [{"session": s, "label": lb, "count": n} for (s, lb), n in groups.items()]

    def relabel(self, session, to_label, keep=None):
        moved = 0
        for i, (label, window, source, sess) in enumerate(self.rows):
            if sess == session and label != keep:
                self.rows[i] = (to_label, window, source, sess)
                moved += 1
        return moved

    def close(self):
        pass


class FakeClassifier:
    """Says 'left' for loud low-frequency windows, 'right' for loud high ones, else 'noise'."""

    labels = ("left", "right", "noise")
    version = 1
    runtime = "fake"
    metadata: dict = {}

    def predict(self, window):
        lo, hi = window[:, 10:60].max(), window[:, 60:].max()
        if max(lo, hi) < -50:
            return np.array([0.02, 0.02, 0.96], dtype=np.float32)
        return np.array([0.96, 0.02, 0.02] if lo > hi else [0.02, 0.96, 0.02], dtype=np.float32)


class FakeRegistry:
    def __init__(self, classifier=None):
        self.classifier = classifier

    def load_current(self, expect_hop=None):
        return self.classifier

    def rollback(self):
        return 0


class FakeSlider:
    def __init__(self, position=5.0):
        self.position = position
        self.moves: list[float] = []

    def step(self, delta):
        self.position = round(min(10.0, max(0.0, self.position + delta)), 9)
        self.moves.append(self.position)
        return self.position

    def set(self, value):
        self.position = min(10.0, max(0.0, value))
        self.moves.append(self.position)
        return self.position

    def tick(self, now=None):
        pass


class ManualClock:
    """A clock tests move by hand, with the ``schedule(delay, fn)`` the button panel uses for its
    debounce timers: ``advance(dt)`` runs what fell due, in order, on the calling thread."""

    class _Handle:
        def __init__(self, due: float, fn):
            self.due, self.fn, self.cancelled = due, fn, False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self, start: float = 1000.0):
        self.t = start
        self._pending: list[ManualClock._Handle] = []

    def __call__(self) -> float:
        return self.t

    def schedule(self, delay_s: float, fn):
        handle = ManualClock._Handle(self.t + delay_s, fn)
        self._pending.append(handle)
        return handle

    def advance(self, dt: float) -> None:
        end = self.t + dt
        while True:
            due = sorted((h for h in self._pending if not h.cancelled and h.due <= end), key=lambda h: h.due)
            if not due:
                break
            h = due[0]
            self._pending.remove(h)
            self.t = max(self.t, h.due)
            h.fn()
        self.t = end
