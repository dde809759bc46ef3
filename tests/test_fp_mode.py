"""The FPU mode survives loading a TFLite runtime (the armv7l wheel switches on flush-to-zero).

Each check runs in a fresh interpreter: the mode is per process (per thread), and a runtime already
imported by another test would hide what loading it does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_subnormals_survive_loading_and_running_the_runtime():
    """Fails on 32-bit Pi OS (tflite_runtime armv7l) without edge.model.fp_mode."""
    model = DATA / "tf-converter-codelab-int8.tflite"
    out = _python(f"""
        import numpy as np
        from edge.model.classifier import Classifier
        from edge.model.fp_mode import flushes_subnormals
        clf = Classifier(open({str(model)!r}, "rb").read(), labels=["noise", "left", "right"])
        clf.predict(np.zeros((3, 232), np.float32))
        tiny = np.float32(1e-40)   # a subnormal float32
        print(clf.runtime, flushes_subnormals(), float(tiny * np.float32(1.0)) == 0.0)
        """)
    runtime, flushes, numpy_flushes = out.split()
    assert (flushes, numpy_flushes) == ("False", "False"), f"{runtime} left flush-to-zero on"


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build a fast-math library")
def test_preserved_fp_env_undoes_a_fast_math_library(tmp_path):
    """A shared library linked with -ffast-math (gcc ≤ 12 adds crtfastmath.o) sets flush-to-zero as it
    loads, like the armv7l tflite_runtime does: outside the guard it sticks, inside it is undone."""
    src = tmp_path / "fm.c"
    src.write_text("double fm_mul(double a, double b) { return a * b; }\n")
    lib = tmp_path / "libfm.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-ffast-math", "-o", str(lib), str(src)], check=True)
    load = "import ctypes; from edge.model.fp_mode import flushes_subnormals, preserved_fp_env\n"
    bare = _python(load + f"ctypes.CDLL({str(lib)!r}); print(flushes_subnormals())")
    if bare == "False":
        pytest.skip("this compiler's -ffast-math does not set flush-to-zero on load (gcc ≥ 13)")
    guarded = _python(load + f"with preserved_fp_env(): ctypes.CDLL({str(lib)!r})\nprint(flushes_subnormals())")
    assert (bare, guarded) == ("True", "False")
