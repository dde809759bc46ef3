"""Which TFLite interpreter is installed: ai-edge-litert first, tflite-runtime as the fallback.

tflite-runtime is the only runtime with a 32-bit (armv7l) wheel, and it needs numpy<2; LiteRT has
64-bit wheels only and works with numpy 2. Both are used through the same Interpreter API.
"""

from __future__ import annotations

from edge.errors import RuntimeMissing
from edge.model.fp_mode import preserved_fp_env


def interpreter_class():
    """(Interpreter class, runtime name)."""
    with preserved_fp_env():   # NOTE: the armv7l wheel switches on flush-to-zero as it loads
        return _import_interpreter()


def _import_interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    except SystemError as exc:  # tflite-runtime built against numpy 1 under numpy 2
        raise RuntimeMissing(f"tflite-runtime cannot load with this numpy ({exc}); "
                             "install numpy<2 or use ai-edge-litert") from None
    raise RuntimeMissing("no TFLite runtime installed: pip install ai-edge-litert "
                         "(64-bit), or tflite-runtime with numpy<2 (32-bit Pi OS)")
