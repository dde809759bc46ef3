"""The numpy network and trainer, our int8 TFLite writer, and the classifier in the real runtime.

CI runs this file twice: numpy 2 + ai-edge-litert, and numpy<2 + tflite-runtime (deploy/dev.sh).
"""

import numpy as np
import pytest

from edge.errors import ModelError, TrainingError
from edge.model import network as net
from edge.model.classifier import Classifier
from edge.model.quantize import quantize, simulate
from edge.model.runtime import interpreter_class
from edge.model.tflite_writer import read_metadata, write_model
from edge.model.train import PRESETS, Recipe, split_balanced, train


@pytest.mark.parametrize("depth,unknown_into", [(8, None), (16, 2)])
def test_gradients_match_finite_differences(depth, unknown_into):
    rng = np.random.default_rng(0)
    p = net.init_params(3, rng, np.float64, unknown_into=unknown_into, depth=depth)
    p.conv_b[:] = rng.normal(size=depth) * 0.2
    p.dense_b[:] = rng.normal(size=p.num_outputs) * 0.2
    x = net.normalize(rng.normal(-80, 12, size=(6, 3, 232)))
    y = np.array([0, 1, 2, 0, 1, 2]) if unknown_into is None else np.array([0, 1, 2, 3, 1, 3])
    _, grads, _ = net.loss_and_grads(p, x, y)
    eps = 1e-6
    for name in net.Params.NAMES:
        a, g = getattr(p, name), getattr(grads, name)
        idx = [tuple(i) for i in np.array(np.unravel_index(rng.choice(a.size, min(a.size, 60), replace=False),
                                                            a.shape)).T]
        for i in idx:
            old = a[i]
            a[i] = old + eps
            lp = net.loss_and_grads(p, x, y)[0]
            a[i] = old - eps
            lm = net.loss_and_grads(p, x, y)[0]
            a[i] = old
            num = (lp - lm) / (2 * eps)
            rel = abs(num - g[i]) / max(abs(num) + abs(g[i]), 1e-7)
            assert rel <= 1e-4 or abs(num - g[i]) < 1e-9, f"{name}{i}: numeric {num}, analytic {g[i]}"


def test_output_shapes_follow_the_codelab_network():
    p = net.init_params(4, np.random.default_rng(1))
    assert p.conv_w.shape == (3, 3, 8) and p.dense_w.shape == (920, 4)
    probs = net.forward(p, np.zeros((2, 3, 232), np.float32))
    assert probs.shape == (2, 4) and np.allclose(probs.sum(1), 1)


def test_a_deeper_model_trains_exports_and_runs_as_written(seed_data):
    """``train.depth``: 16 filters instead of the codelab's 8 — 1,840 features into the dense layer, and
    the .tflite (depth multiplier 16) computes in the installed runtime what the simulation says."""
    x, y, xt, yt, labels = seed_data
    r = Recipe(epochs=3, depth=16)
    result = train(x[:600], y[:600], labels, r)
    assert result.params.conv_w.shape == (3, 3, 16) and result.params.dense_w.shape == (1840, 3)
    qm = quantize(result.params, x[:600])
    from edge.config import Config
    from edge.model.pipeline import metadata
    data = write_model(qm, metadata(Config(), result, r, 1.0))
    assert read_metadata(data)["recipe"]["depth"] == 16
    q = Classifier(data, expect_hop=1024).predict_batch(xt[:200])
    assert np.abs(q - simulate(qm, net.normalize(xt[:200]))).max() <= 0.02
    assert np.mean(q.argmax(1) == yt[:200]) > 0.6


def test_training_is_deterministic_and_reports_every_epoch(seed_data):
    x, y, _, _, labels = seed_data
    seen = []
    r1 = train(x, y, labels, Recipe(epochs=3, seed=7), progress=lambda *a: seen.append(a))
    r2 = train(x, y, labels, Recipe(epochs=3, seed=7))
    assert [s[0] for s in seen] == [1, 2, 3] and all(s[1] == 3 for s in seen)
    assert all(0 <= s[3] <= 1 and s[5] is not None for s in seen)
    assert np.array_equal(r1.params.dense_w, r2.params.dense_w)


def test_validation_split_is_class_balanced():
    y = np.array([0] * 100 + [1] * 20 + [2] * 7)
    tr, va = split_balanced(y, 0.15, np.random.default_rng(0))
    assert sorted(np.bincount(y[va].astype(np.intp)).tolist()) == sorted([15, 3, 1])
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == len(y)


def test_too_few_examples_is_a_clear_error(seed_data):
    x, y, _, _, labels = seed_data
    keep = np.concatenate([np.flatnonzero(y == 0)[:4], np.flatnonzero(y != 0)])
    with pytest.raises(TrainingError, match=f"{labels[0]} has 4"):
        train(x[keep], y[keep], labels, Recipe(min_examples=10))


def test_cancel_stops_training(seed_data):
    x, y, _, _, labels = seed_data
    with pytest.raises(TrainingError, match="cancelled"):
        train(x, y, labels, should_stop=lambda: True)


@pytest.fixture(scope="module")
def trained(seed_data):
    x, y, _, _, labels = seed_data
    result = train(x, y, labels)
    qm = quantize(result.params, x)
    meta = {"format": "edge-slider-model", "format_version": 1, "labels": list(labels), "sample_rate": 44100,
            "fft_size": 2048, "hop": 1024, "bins": 232, "frames": 3, "input": "dB"}
    return result, qm, write_model(qm, meta)


def test_default_recipe_beats_the_codelab_anchors(seed_data, trained):
    _, _, xt, yt, _ = seed_data
    result, _, _ = trained
    acc = float(np.mean(net.forward(result.params, net.normalize(xt)).argmax(1) == yt))
    assert acc >= 0.97          # TF.js median 97.5%, Keras 95.7% (bench figures: 10 seeds)


def test_int8_model_runs_in_the_installed_runtime_and_agrees_with_float(seed_data, trained):
    _, _, xt, yt, labels = seed_data
    result, qm, data = trained
    clf = Classifier(data, expect_hop=1024)
    assert clf.labels == labels and clf.runtime in ("litert", "tflite-runtime")
    q = clf.predict_batch(xt)
    f = net.forward(result.params, net.normalize(xt))
    agree = float(np.mean(q.argmax(1) == f.argmax(1)))
    assert agree >= 0.99
    assert float(np.abs(q - f).max()) <= 0.05
    # our fake-quant simulation predicts what the runtime computes
    assert float(np.abs(simulate(qm, net.normalize(xt)) - q).max()) <= 0.02


def test_model_file_is_small_and_self_describing(trained):
    _, _, data = trained
    assert len(data) <= 6240              # the TF converter's int8 model of the same network
    meta = read_metadata(data)
    assert meta["labels"] == ["low", "mid", "noise"] and meta["hop"] == 1024 and meta["frames"] == 3


def test_intermediate_tensors_carry_the_quantization_we_wrote(trained):
    """Pool and reshape must keep the conv's scale (they do not requantize); softmax is 1/256, −128."""
    _, qm, data = trained
    Interpreter, _ = interpreter_class()
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    by_name = {d["name"]: d for d in it.get_tensor_details()}
    for name in ("conv", "pool", "flat"):
        scale, zp = by_name[name]["quantization"]
        assert scale == pytest.approx(qm.conv_q.scale, rel=1e-6) and zp == qm.conv_q.zero_point
    assert by_name["probs_q"]["quantization"] == pytest.approx((1 / 256, -128))
    assert list(by_name["conv_w"]["quantization_parameters"]["quantized_dimension"] for _ in [0]) == [3]


@pytest.mark.parametrize("cut", [0, 7, 100, 2000, -1])
def test_truncated_or_damaged_models_are_refused_in_one_line(trained, cut):
    _, _, data = trained
    bad = data[:cut] if cut >= 0 else data[:8] + bytes(len(data) - 8)
    with pytest.raises(ModelError) as e:
        Classifier(bad)
    assert "\n" not in str(e.value)


def test_wrong_hop_is_refused_with_the_fix(trained):
    _, _, data = trained
    with pytest.raises(ModelError, match="frontend.hop = 512"):
        Classifier(data, expect_hop=512)


def test_foreign_model_needs_labels_and_then_works(seed_data, trained):
    _, _, xt, _, _ = seed_data
    result, qm, _ = trained
    foreign = write_model(qm, {"something": "else"})      # no edge-slider format: treated as foreign
    from edge.model import tflite_writer
    assert tflite_writer.read_metadata(foreign) == {"something": "else"}
    # strip our metadata name so it really is foreign
    foreign = foreign.replace(b"edge_slider", b"other_meta_")
    with pytest.raises(ModelError, match="labels file"):
        Classifier(foreign)
    clf = Classifier(foreign, labels=["a", "b", "c"])
    assert clf.labels == ("a", "b", "c") and clf.predict(xt[0]).shape == (3,)
    with pytest.raises(ModelError, match="3 outputs but 2 labels"):
        Classifier(foreign, labels=["a", "b"])


def test_codelab_preset_is_the_codelab_recipe():
    assert PRESETS["codelab"] == Recipe(epochs=10, batch_size=16, learning_rate=0.01)
