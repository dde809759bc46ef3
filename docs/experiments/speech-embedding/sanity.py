import os
import sys, subprocess; sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import numpy as np, feats
from ai_edge_litert.interpreter import Interpreter
from edge.tooling.build_bank import decode
m = Interpreter(model_path=feats.D + "hey_jarvis.tflite"); m.allocate_tensors()
i, o = m.get_input_details()[0], m.get_output_details()[0]
print(i["shape"])
for lang, text in [("de", "hey jarvis"), ("nl", "hey jarvis"), ("de", "guten morgen, wie geht es dir"), ("es", "hey jarvis")]:
    subprocess.run(["espeak-ng", "-v", lang, "-w", os.environ.get("EMB_WORK", "work") + "/s.wav", text], check=True)
    x = decode(os.environ.get("EMB_WORK", "work") + "/s.wav"); x = np.concatenate([np.zeros(44100), x / np.abs(x).max() * 0.3, np.zeros(44100)])
    E, t = feats.embeddings(x)
    best = 0
    for j in range(16, len(E) + 1):
        m.set_tensor(i["index"], E[None, j - 16:j].astype(np.float32)); m.invoke()
        best = max(best, float(m.get_tensor(o["index"]).squeeze()))
    print(lang, text, round(best, 3))
