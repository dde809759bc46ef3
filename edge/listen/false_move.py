"""The memory behind "that was wrong": what the last move sounded like, and where the slider was.

The listening path remembers the last second of windows; a move keeps those (its onset and the
detections that made it) and the next 0.3 s (its tail). Marking the move wrong takes them, once,
to store as background, and gives back the position to return to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge.config import NUM_BINS, NUM_FRAMES

FALSE_MOVE_BEFORE_S = 1.0
FALSE_MOVE_AFTER_S = 0.3
"""The sound of a move marked wrong: windows from 1 s before the decision to 0.3 s after."""
FALSE_MOVE_MAX_AGE_S = 30.0
"""`cmd/false_move` (or the button) must come within this long of the move (stream time)."""


@dataclass
class Move:
    t: float
    label: str
    before: float
    """The slider position before the move: where "that was wrong" puts it back."""
    windows: list[np.ndarray] = field(default_factory=list)

    def sound(self) -> np.ndarray:
        """[n, 3, 232] windows of the move's sound."""
        return np.stack(self.windows) if self.windows else np.empty((0, NUM_FRAMES, NUM_BINS), np.float32)


class MoveMemory:
    """Loop-thread only."""

    def __init__(self, hops_per_s: float):
        self._recent: deque[tuple[float, np.ndarray]] = deque(maxlen=int(FALSE_MOVE_BEFORE_S * hops_per_s) + 1)
        self.last: Move | None = None

    def remember(self, window: np.ndarray, t: float) -> None:
        """Every listened window (a copy: the caller's buffer is reused)."""
        w = window.copy()
        self._recent.append((t, w))
        move = self.last
        if move is not None and move.t < t <= move.t + FALSE_MOVE_AFTER_S:
            move.windows.append(w)

    def moved(self, t: float, label: str, before: float) -> None:
        self.last = Move(t, label, before, [w for (tw, w) in self._recent if tw >= t - FALSE_MOVE_BEFORE_S])

    def recent_move(self, now: float, within_s: float = FALSE_MOVE_MAX_AGE_S) -> Move | None:
        move = self.last
        return move if move is not None and now - move.t <= within_s else None

    def take(self) -> Move | None:
        move, self.last = self.last, None
        return move
