"""Keeping the daemon's resident memory flat over months (glibc malloc tuning, no dependencies).

Measured in the soak: each on-device training allocates ~50 MB of numpy temporaries on its own
thread. With glibc's default *dynamic* mmap threshold those large blocks end up in the thread's
heap arena after the first free and stay resident: RSS went 60 → 110 MB after a few trainings and
wandered between 58 and 90 MB. A fixed 128 KiB threshold keeps every large array in its own
mapping, returned to the OS when freed: RSS then stays flat after the first training.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024
"""glibc's default trim threshold, which a fixed mmap threshold leaves fixed too."""
TRAINING_MMAP_BYTES = 32 << 20
TRAINING_TRIM_BYTES = 64 << 20
_configured = False


def _libc():
    import ctypes
    return ctypes.CDLL("libc.so.6")


def configure_malloc() -> None:
    """Fix glibc's mmap threshold at 128 KiB (disables its upward drift); no-op off glibc."""
    global _configured
    try:
        _libc().mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        _configured = True
    except (OSError, AttributeError):
        pass


@contextmanager
def roomy_heap() -> Iterator[None]:
    """For the length of a training: big mmap and trim thresholds; the daemon's after it.

    With the daemon's fixed 128 KiB threshold every mini-batch's ~0.25 MB temporaries (and the
    calibration's few-MB chunks) were mapped fresh and page-faulted in, then unmapped: pressing
    Train took 4.9–5.1 s instead of 1.8–2.0 s (1,500 windows with the bank, this machine). Inside,
    they are reused from the heap: RSS peaks ~50 MB higher during the training (as the `train`
    CLI's already does), and the caller's :func:`release_free_heap` afterwards gives it back —
    measured the same RSS after the trim either way. No-op unless :func:`configure_malloc` ran
    (a CLI process keeps glibc's own dynamic thresholds)."""
    if not _configured:
        yield
        return
    libc = _libc()
    libc.mallopt(M_MMAP_THRESHOLD, TRAINING_MMAP_BYTES)
    libc.mallopt(M_TRIM_THRESHOLD, TRAINING_TRIM_BYTES)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        # NOTE: a free() of a block ≥ 64 KiB in the training thread's own arena, now that the trim
        # threshold is back at 128 KiB, makes glibc consolidate that arena and trim its top; then
        # malloc_trim(0). Measured in the 3-minute soak: without these the daemon kept 132 MB after
        # its first training (68 before it); with them 73.9 MB, as before roomy_heap.
        nudge = bytearray(100 * 1024)
        del nudge
        libc.malloc_trim(0)


def release_free_heap() -> None:
    """``malloc_trim(0)``: return freed pages of every malloc arena to the OS; no-op off glibc.

    Called after start-up and after each training: both free tens of MB of numpy temporaries,
    and the training thread's own arena would otherwise keep ~14 MB resident for good (measured
    in the soak: 63 → 77 MB after the first training).
    """
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), MB, from /proc (VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the peak is the best there is
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
