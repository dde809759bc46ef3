"""Keep the process's floating-point mode IEEE when a TFLite runtime loads.

The armv7l `tflite_runtime` wheel is linked with fast-math start-up code: loading it sets the
flush-to-zero bit of the FPSCR, so from then on every subnormal float in the thread (numpy, the
training code, Python floats) silently becomes 0. That broke a float test on 32-bit Pi OS and can
turn a tiny-but-nonzero value into a division by zero. The runtime's int8 kernels do not need the
mode, so the environment saved before the load is put back right after it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)

# fenv_t is 4 bytes on armhf, 8 on arm64, 32 on x86_64: 64 covers every glibc target.
_FENV_BYTES = 64


def flushes_subnormals() -> bool:
    """True when this thread's FPU turns subnormal results into zero."""
    tiny = float.fromhex("0x1p-1070")   # a subnormal double
    one = float(len("x"))               # computed, so nothing can fold the product away
    return tiny * one == 0.0


@functools.cache   # find_library runs ldconfig/gcc: once per process, not per model load
def _libm() -> ctypes.CDLL | None:
    for name in (None, ctypes.util.find_library("m")):
        try:
            lib = ctypes.CDLL(name)
            lib.fegetenv  # noqa: B018 - raises AttributeError when the symbol is not there
            lib.fesetenv  # noqa: B018
            return lib
        except (OSError, AttributeError):
            continue
    return None


@contextmanager
def preserved_fp_env() -> Iterator[None]:
    """Run the block, then restore the FP environment (rounding, exception masks, flush-to-zero)."""
    lib = _libm()
    saved = ctypes.create_string_buffer(_FENV_BYTES)
    if lib is None or lib.fegetenv(saved) != 0:
        yield
        return
    try:
        yield
    finally:
        if flushes_subnormals():
            log.debug("the TFLite runtime switched on flush-to-zero; restoring the IEEE mode")
        lib.fesetenv(saved)
