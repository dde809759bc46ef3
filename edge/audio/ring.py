"""A preallocated float32 ring of audio samples: one producer, one consumer, overwrite-oldest.

The producer (PortAudio's callback thread, or a WAV/synthetic feeder) calls :meth:`write`; the
consumer (the frame loop) calls :meth:`read_new`. Positions are absolute sample counts since the
stream started, so the consumer always knows exactly which samples it got and how many it lost.

Why no lock on the data: ``write`` copies into the array first and publishes the new end
position afterwards (a single attribute store, atomic under the GIL). The consumer reads the
end position, copies, then re-reads the producer's end: any sample that might have been
overwritten during the copy is detected and counted as an overrun instead of returned.
"""

from __future__ import annotations

import threading

import numpy as np


class Ring:
    """Fixed-capacity sample ring.

    :param capacity: samples held; older ones are overwritten (and counted) when the consumer lags.
    :param max_write: largest piece the producer writes in one step (bigger writes are split). The
        consumer treats the ``max_write`` oldest samples as possibly being overwritten right now.
    """

    def __init__(self, capacity: int, max_write: int | None = None):
        if capacity < 2:
            raise ValueError("capacity must be at least 2 samples")
        self.capacity = int(capacity)
        self.max_write = int(max_write or max(1, capacity // 8))
        if not 1 <= self.max_write < self.capacity:
            raise ValueError("max_write must be between 1 and capacity - 1")
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._end = 0
        """Absolute index one past the newest sample written (producer-owned)."""
        self._read = 0
        """Absolute index of the next sample the consumer wants (consumer-owned)."""
        self.overruns = 0
        """Samples the consumer lost because the producer overwrote them (consumer-owned)."""
        self._data_ready = threading.Event()
        self.closed = False

    # -- producer side --------------------------------------------------------------------------
    def write(self, samples: np.ndarray) -> None:
        """Append samples (any float-convertible 1-D array). O(n), no allocation for n <= capacity."""
        n = samples.shape[0]
        while n > self.max_write:
            self.write(samples[:self.max_write])
            samples = samples[self.max_write:]
            n = samples.shape[0]
        if n == 0:
            return
        start = self._end % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = samples[:first]
        if first < n:
            self._buf[:n - first] = samples[first:]
        # NOTE: publish the new end only after the copy, so the consumer never sees unwritten data.
        self._end += n
        self._data_ready.set()

    def close(self) -> None:
        """Producer is done (end of file, stream stopped): wakes a waiting consumer."""
        self.closed = True
        self._data_ready.set()

    # -- consumer side --------------------------------------------------------------------------
    @property
    def end(self) -> int:
        return self._end

    @property
    def read_position(self) -> int:
        return self._read

    def available(self) -> int:
        return min(self._end - self._read, self.capacity)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until new data arrives or the ring is closed; True if there is data to read."""
        if self._end > self._read:
            return True
        self._data_ready.clear()
        if self._end > self._read or self.closed:
            return self._end > self._read
        self._data_ready.wait(timeout)
        return self._end > self._read

    def read_new(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every sample written since the last call (those overwritten meanwhile are counted, not returned).

        Returns a new array unless ``out`` (large enough) is given, in which case a view of it.
        """
        end = self._end
        start = max(self._read, end - self.capacity)
        lost = start - self._read
        n = end - start
        dst = np.empty(n, dtype=np.float32) if out is None else out[:n]
        self._copy(start, n, dst)
        # NOTE: the producer may have lapped us during the copy, and a write may be in flight past
        # its published end: drop everything it may have overwritten.
        end_after = self._end
        oldest_valid = end_after + self.max_write - self.capacity
        if oldest_valid > start:
            cut = min(oldest_valid - start, n)
            lost += cut
            dst = dst[cut:]
            start += cut
        self.overruns += lost
        self._read = end
        return dst

    def last(self, n: int) -> np.ndarray:
        """A copy of the newest ``n`` samples (for pre-roll); fewer if fewer were ever written."""
        end = self._end
        n = min(n, end, self.capacity)
        dst = np.empty(n, dtype=np.float32)
        self._copy(end - n, n, dst)
        return dst

    def _copy(self, start: int, n: int, dst: np.ndarray) -> None:
        if n <= 0:
            return
        s = start % self.capacity
        first = min(n, self.capacity - s)
        dst[:first] = self._buf[s:s + first]
        if first < n:
            dst[first:n] = self._buf[:n - first]
