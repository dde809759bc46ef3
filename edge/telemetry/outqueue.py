"""The outgoing queue of the MQTT client: bounded, sheds predictions first, then events, never replies.

The audio loop puts into it (O(1), no network, no JSON); the publisher thread takes from it while
connected. See :mod:`edge.telemetry.mqtt` for who waits for what.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable

from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class Outgoing:
    """One message waiting for the publisher. ``payload`` may be a callable, serialised late."""

    topic: str
    payload: bytes | Callable[[], bytes]
    qos: int = 1
    retain: bool = False
    properties: Properties | None = None


class OutQueue:
    """Bounded FIFO that sheds predictions first, then events, never replies. All operations O(1).

    Three deques (predictions, events, replies) tagged with a sequence number, merged in order on
    the way out, so dropping "the oldest prediction" never has to search. Replies may take the
    queue over ``size``: their producer (the command worker) waits for :meth:`has_room` first,
    so they stay bounded by one command's reply beyond it.
    """

    def __init__(self, size: int):
        self.size = size
        self._preds: deque[tuple[int, Outgoing]] = deque()
        self._events: deque[tuple[int, Outgoing]] = deque()
        self._replies: deque[tuple[int, Outgoing]] = deque()
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self.dropped_predictions = 0
        self.dropped_other = 0

    def __len__(self) -> int:
        return len(self._preds) + len(self._events) + len(self._replies)

    def has_room(self) -> bool:
        return len(self) < self.size

    def put(self, item: Outgoing, prediction: bool = False, reply: bool = False) -> None:
        with self._lock:
            if len(self) >= self.size:
                if self._preds:
                    self._preds.popleft()
                    self.dropped_predictions += 1
                elif prediction:
                    self.dropped_predictions += 1
                    return
                elif self._events:
                    # No prediction left: the oldest event is the least useful message.
                    self._events.popleft()
                    self.dropped_other += 1
                elif not reply:
                    self.dropped_other += 1
                    return
            target = self._preds if prediction else self._replies if reply else self._events
            target.append((next(self._seq), item))

    def get(self) -> Outgoing | None:
        with self._lock:
            heads = [q for q in (self._preds, self._events, self._replies) if q]
            if not heads:
                return None
            return min(heads, key=lambda q: q[0][0]).popleft()[1]

    def push_front(self, item: Outgoing) -> None:
        """Put back a message paho could not take (queue full, connection lost mid-drain)."""
        with self._lock:
            self._replies.appendleft((-1, item))
