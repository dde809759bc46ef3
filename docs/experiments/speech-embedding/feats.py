"""Experiment: Google speech_embedding (as shipped in pyopen-wakeword) features for a 44.1 kHz signal."""
import numpy as np, soxr
from ai_edge_litert.interpreter import Interpreter

D = str(__import__("pathlib").Path(__import__("pyopen_wakeword").__file__).parent / "models") + "/"
_mel = Interpreter(model_path=D + "melspectrogram.tflite")
_emb = Interpreter(model_path=D + "embedding_model.tflite")

def melspec(x16k: np.ndarray) -> np.ndarray:
    inp = _mel.get_input_details()[0]
    _mel.resize_tensor_input(inp["index"], [1, len(x16k)])
    _mel.allocate_tensors()
    _mel.set_tensor(inp["index"], x16k[None].astype(np.float32))
    _mel.invoke()
    spec = np.squeeze(_mel.get_tensor(_mel.get_output_details()[0]["index"]))
    return spec / 10 + 2

def embeddings(x44: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(E [n, 96], t_end [n] seconds in the input) every 80 ms."""
    x = soxr.resample(x44.astype(np.float32), 44100, 16000) * 32767.0
    spec = melspec(x)  # [frames, 32], 10 ms per frame
    starts = np.arange(0, spec.shape[0] - 76 + 1, step)
    if len(starts) == 0:
        return np.zeros((0, 96), np.float32), np.zeros(0)
    win = np.stack([spec[s:s + 76] for s in starts])[..., None].astype(np.float32)
    inp = _emb.get_input_details()[0]
    out = []
    for i in range(0, len(win), 512):
        b = win[i:i + 512]
        _emb.resize_tensor_input(inp["index"], list(b.shape))
        _emb.allocate_tensors()
        _emb.set_tensor(inp["index"], b)
        _emb.invoke()
        out.append(np.squeeze(_emb.get_tensor(_emb.get_output_details()[0]["index"]), axis=(1, 2)))
    # mel frame k covers ~[k*10ms, k*10ms+25ms]; a window's end:
    t_end = (starts + 76) * 0.010 + 0.015
    return np.concatenate(out), t_end
