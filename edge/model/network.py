"""The codelab network in numpy: forward, backward, nothing else (no IO, no training loop).

    input [3, 232] dB → normalize (dB + 100) / 10
    → depthwise conv 3×3, depth multiplier 8, valid, ReLU   → [1, 230, 8]
    → max-pool [1, 2], stride [2, 2]                         → [1, 115, 8]
    → flatten (NHWC order, as TF does)                       → [920]
    → dense K → softmax

The conv is one matmul over the input's 9 taps per output position, so a whole mini-batch is a
handful of BLAS calls; on this size of network that is what makes training take ~0.3 s. Inside,
conv outputs are kept in *pool order* (even positions, then odd: see :func:`patches`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edge.config import NUM_BINS, NUM_FRAMES

NORM_MEAN = -100.0
NORM_STD = 10.0
KH, KW, DEPTH = NUM_FRAMES, 3, 8
CONV_W = NUM_BINS - KW + 1          # 230
POOL_W = CONV_W // 2                 # 115


def normalize(x_db: np.ndarray) -> np.ndarray:
    """The codelab's normalization: (dB − (−100)) / 10."""
    return (x_db - NORM_MEAN) / NORM_STD


@dataclass
class Params:
    """Weights in TF's layouts: conv [KH, KW, DEPTH] (input channel 1 squeezed), dense [920, K]."""

    conv_w: np.ndarray
    conv_b: np.ndarray
    dense_w: np.ndarray
    dense_b: np.ndarray
    unknown_into: int | None = None
    """With a bank class: the dense layer has one output more than there are labels, the bank's
    "unknown" sounds, and predictions add its probability to this class (the background) — see
    :func:`fold`. None: one output per label, as the codelab."""

    NAMES = ("conv_w", "conv_b", "dense_w", "dense_b")

    @property
    def depth(self) -> int:
        """The conv's depth multiplier: the codelab's 8, or more (``train.depth``)."""
        return int(self.conv_b.shape[0])

    @property
    def flat(self) -> int:
        """Features into the dense layer: 115 pooled positions × depth (the codelab's 920)."""
        return POOL_W * self.depth

    @property
    def num_outputs(self) -> int:
        return int(self.dense_b.shape[0])

    @property
    def num_classes(self) -> int:
        """Labels the model predicts (outputs after the fold)."""
        return self.num_outputs - (self.unknown_into is not None)

    def arrays(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self.NAMES]

    def astype(self, dtype) -> "Params":
        return replace(self, **{n: getattr(self, n).astype(dtype) for n in self.NAMES})

    def copy(self) -> "Params":
        return replace(self, **{n: getattr(self, n).copy() for n in self.NAMES})


def fold(probs: np.ndarray, unknown_into: int | None) -> np.ndarray:
    """Probabilities per label: the last ("unknown") output added to ``unknown_into``. An acting class's
    probability is unchanged, so is every decision at a threshold ≥ 0.5 (it must be the top class)."""
    if unknown_into is None:
        return probs
    out = probs[..., :-1].copy()
    out[..., unknown_into] += probs[..., -1]
    return out


def init_params(num_classes: int, rng: np.random.Generator, dtype=np.float32,
                unknown_into: int | None = None, depth: int = DEPTH) -> Params:
    """Glorot-uniform kernels and zero biases, as Keras / TF.js initialise these layers (with
    ``unknown_into``, one output more: see :attr:`Params.unknown_into`)."""
    outputs = num_classes + (unknown_into is not None)
    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    return Params(
        conv_w=glorot((KH, KW, depth), KH * KW, KH * KW * depth),
        conv_b=np.zeros(depth, dtype),
        dense_w=glorot((POOL_W * depth, outputs), POOL_W * depth, outputs),
        dense_b=np.zeros(outputs, dtype),
        unknown_into=unknown_into,
    )


def patches(xn: np.ndarray) -> np.ndarray:
    """[N, 3, 232] normalized → [N, 230, 9] conv taps, tap (i, j) at index 3·i + j, positions in
    *pool order*: the 115 even output positions first, then the 115 odd ones (see :func:`pool`)."""
    n = xn.shape[0]
    out = np.empty((n, 2, POOL_W, KH, KW), xn.dtype)
    # NOTE: 18 slice copies (each reads one row at stride 2) instead of copying a transposed
    # sliding-window view, whose innermost axis is only 3 long: 4× faster. Pool order makes each
    # half of a max-pool pair one contiguous block, which makes the pool and its gradient 4× faster.
    for par in range(2):
        for i in range(KH):
            for j in range(KW):
                out[:, par, :, i, j] = xn[:, i, j + par:j + par + 2 * POOL_W - 1:2]
    return out.reshape(n, CONV_W, KH * KW)


def conv(taps: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Taps [N, 230, 9] @ kernel [9, D] + bias → [N, 230, D] before the ReLU (in the taps' order)."""
    # NOTE: one 2-D matmul (a single BLAS call): the 3-D [N, 230, 9] @ [9, D] form is ~9× slower.
    z = taps.reshape(-1, KH * KW) @ w
    z += b
    return z.reshape(taps.shape[0], CONV_W, w.shape[1])


def pool(a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool [N, 230, D] in pool order → ([N, 115, D] in position order, which of each pair won:
    True = the odd position)."""
    even, odd = a1[:, :POOL_W], a1[:, POOL_W:]
    return np.maximum(even, odd), odd > even


@dataclass
class Cache:
    taps: np.ndarray
    z1: np.ndarray
    pick: np.ndarray
    flat: np.ndarray
    probs: np.ndarray


def forward(p: Params, xn: np.ndarray, keep: bool = False):
    """Probabilities [N, K] per label for normalized input [N, 3, 232]; with ``keep`` the raw softmax
    over every output (the unknown one too: what the loss needs) and the backward cache."""
    taps = patches(xn)
    z1 = conv(taps, p.conv_w.reshape(KH * KW, p.depth), p.conv_b)  # [N, 230, 8]
    pooled, pick = pool(np.maximum(z1, 0))                          # [N, 115, 8]
    flat = pooled.reshape(xn.shape[0], p.flat)
    logits = flat @ p.dense_w + p.dense_b
    probs = softmax(logits)
    if keep:
        return probs, Cache(taps, z1, pick, flat, probs)
    return fold(probs, p.unknown_into)


def logits_and_activations(p: Params, xn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(conv ReLU output [N, 230, 8] in pool order, logits [N, K]): what int8 calibration needs."""
    a1 = np.maximum(conv(patches(xn), p.conv_w.reshape(KH * KW, p.depth), p.conv_b), 0)
    pooled = pool(a1)[0]
    return a1, pooled.reshape(xn.shape[0], p.flat) @ p.dense_w + p.dense_b


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def loss_and_grads(p: Params, xn: np.ndarray, y: np.ndarray,
                   weights: np.ndarray | None = None) -> tuple[float, Params, np.ndarray]:
    """Categorical cross-entropy over the batch (mean, or weighted mean with per-example
    ``weights``), its gradients, and the probabilities."""
    n = xn.shape[0]
    probs, c = forward(p, xn, keep=True)
    nll = -np.log(np.clip(probs[np.arange(n), y], 1e-12, None))
    dz2 = probs.copy()
    dz2[np.arange(n), y] -= 1.0
    if weights is None:
        loss = float(np.mean(nll))
        dz2 /= n
    else:
        w = (weights / weights.sum()).astype(dz2.dtype)
        loss = float(np.dot(w, nll))
        dz2 *= w[:, None]
    d_dense_w = c.flat.T @ dz2
    d_dense_b = dz2.sum(axis=0)
    dpool = (dz2 @ p.dense_w.T).reshape(n, POOL_W, p.depth)
    # The pool's gradient goes to the winner of each pair, then through the ReLU.
    dz1 = np.empty_like(c.z1)
    np.multiply(dpool, ~c.pick, out=dz1[:, :POOL_W])
    np.multiply(dpool, c.pick, out=dz1[:, POOL_W:])
    dz1 *= c.z1 > 0
    d_conv_w = (c.taps.reshape(-1, KH * KW).T @ dz1.reshape(-1, p.depth)).reshape(KH, KW, p.depth)
    # NOTE: as a matmul with ones: numpy's sum over the leading axes of this shape is ~20× slower.
    d_conv_b = np.ones(dz1.shape[0] * CONV_W, dz1.dtype) @ dz1.reshape(-1, p.depth)
    return loss, Params(d_conv_w, d_conv_b, d_dense_w, d_dense_b, p.unknown_into), probs
