"""The trainer: Adam on mini-batches of the codelab network, with a class-balanced validation split.

No IO: arrays in, parameters and history out. Deterministic for a given seed.

Default recipe (measured on shared/bench seed-train → seed-test, see README "Performance"):
Adam lr 0.003, batch 16, 20 epochs. The codelab's own recipe (Adam 0.01, batch 16, 10 epochs)
is ``PRESETS["codelab"]``; at lr 0.01 a fair share of seeds lands 3–5 points lower (variance
from a step size too large for this tiny network, not lack of capacity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from edge.errors import TrainingError
from edge.model import network as net


@dataclass(frozen=True)
class Recipe:
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 0.003
    validation_split: float = 0.15
    seed: int = 0
    min_examples: int = 10
    gain_jitter_db: float = 0.0
    """Each training window is shifted by a random level in ±this many dB every epoch, so the model
    does not learn how loud the sound was at teaching time. 0 here (the seed task: ±12 dB took its
    worst seed from 97.3% to 86.7%); the device's config default is 12 (see TrainSettings)."""
    bank_ratio: float = 0.0
    """Background-bank windows added to every mini-batch, per user window (0 = no bank)."""
    bank_weight: float = 1.0
    """Loss weight of a bank window relative to a user window."""
    bank_gain_db: tuple[float, float] = (-30.0, 10.0)
    """Random level of a bank window around the bank's nominal −30 dB (far, quiet TV … loud talk)."""
    mix_prob: float = 0.0
    """Share of the user's sound windows mixed with a bank window (talk or music behind the sound)."""
    mix_snr_db: tuple[float, float] = (5.0, 25.0)
    """How far below the sound window's level the mixed-in bank window sits, dB."""
    warp_prob: float = 0.0
    """Share of the user's sound windows re-shaped each epoch: frequency axis stretched by a factor
    within ±``warp`` (another voice's formants, a whistle a little higher) and a random spectral tilt
    within ±``tilt_db`` across the band (another microphone, another room)."""
    warp: float = 0.08
    tilt_db: float = 6.0
    reverb_prob: float = 0.0
    """Share of the user's sound windows given a room's reverb each epoch: every frame also hears the
    earlier frames' sound, decaying by ``reverb_decay_db`` per hop (1.5–6 dB ≈ RT60 0.9–0.25 s) from
    a level ``reverb_wet_db`` below it. A knock taught dry in a small room is heard smeared from
    across a tiled one."""
    reverb_decay_db: tuple[float, float] = (1.5, 6.0)
    reverb_wet_db: tuple[float, float] = (-12.0, -3.0)
    depth: int = net.DEPTH
    """The conv's depth multiplier (filters over the 3×3 taps): the codelab's 8, or more — the dense
    layer then reads depth × 115 features instead of 920."""
    bank_class: bool = False
    """Bank windows train a class of their own, "unknown", beside the background class instead of
    being background: quiet room and the user's talk stay one class, everything else nobody taught
    another, and the model's outputs add the two (see :func:`edge.model.network.fold`)."""
    refit_epochs: int = 0
    """After the epochs validated on held-out windows, this many more on all windows."""


PRESETS = {
    "default": Recipe(),
    "codelab": Recipe(epochs=10, batch_size=16, learning_rate=0.01),
}


@dataclass
class EpochStats:
    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None


@dataclass
class TrainResult:
    params: net.Params
    labels: tuple[str, ...]
    history: list[EpochStats] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None
    """Which input windows were trained on / held out (whole holds when trained with groups)."""
    validated: net.Params | None = None
    """With refit epochs: the model as validated, before it also learnt from the held-out windows."""

    @property
    def heldout_params(self) -> net.Params:
        """The parameters that never saw the validation windows (what held-out figures must use)."""
        return self.validated if self.validated is not None else self.params

    @property
    def accuracy(self) -> float | None:
        return self.history[-1].accuracy if self.history else None

    @property
    def val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy if self.history else None


Progress = Callable[..., None]


def split_balanced(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class gives round(fraction · n_c) examples to validation (≥ 1 if any)."""
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(fraction * idx.size)) if fraction > 0 else 0
        if fraction > 0 and idx.size >= 2:
            k = max(1, min(k, idx.size - 1))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.concatenate(train), np.concatenate(val)


def too_few(counts: Mapping[str, int], labels: Iterable[str], min_examples: int) -> str | None:
    """Why training is refused for lack of examples, or None: the one check (train, the engine's
    Train button, ``dataset stats``)."""
    low = [f"{lb} has {counts.get(lb, 0)}" for lb in labels if counts.get(lb, 0) < min_examples]
    if not low:
        return None
    return (f"too few examples (need {min_examples} per class): {', '.join(low)}; "
            "collect more (hold the class button while making the sound)")


def check_counts(y: np.ndarray, labels: tuple[str, ...], min_examples: int) -> dict[str, int]:
    counts = {lb: int(np.sum(y == i)) for i, lb in enumerate(labels)}
    if len(labels) < 2:
        raise TrainingError(f"need at least 2 classes with examples, have {len(labels)} ({', '.join(labels) or 'none'})")
    if (problem := too_few(counts, labels, min_examples)) is not None:
        raise TrainingError(problem)
    return counts


def split_by_group(y: np.ndarray, groups: np.ndarray, fraction: float,
                   rng: np.random.Generator, background: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out *whole holds* (groups, e.g. sessions) of each sound class.

    Windows of one hold are near-copies of each other (consecutive hops of the same sound), so a
    random-window split measures memory, not recognition. Each class with ≥ 2 holds gives
    round(fraction · holds) of them (≥ 1) to validation; a class with one hold falls back to
    random windows. So does the ``background`` class: each of its holds is a different kind of
    sound (silence, talk, the TV), and holding one out for the validated epochs kept the demo's
    only babble hold out of training — the demo then stepped on babble in 3 of 4 runs."""
    train, val = [], []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        holds = np.unique(groups[members])
        if holds.size < 2 or c == background:
            t, v = split_balanced(y[members], fraction, rng)
            train.append(members[t])
            val.append(members[v])
            continue
        k = max(1, min(holds.size - 1, int(round(fraction * holds.size)))) if fraction > 0 else 0
        held = set(rng.permutation(holds)[:k].tolist())
        is_val = np.array([g in held for g in groups[members]], dtype=bool)
        val.append(members[is_val])
        train.append(members[~is_val])
    return np.concatenate(train), np.concatenate(val)


NEGATIVE_POOL = 6000
"""Bank windows mixed into the room once per training (~2 minutes of the bank's sounds)."""


class BatchMaker:
    """Turns user windows into training batches: gain jitter, and — with a bank — the negatives
    and mixtures that teach the model what it was *not* taught."""

    def __init__(self, xn: np.ndarray, y: np.ndarray, recipe: Recipe, rng: np.random.Generator,
                 bank=None, background: int | None = None, room: np.ndarray | None = None):
        self.xn, self.y, self.recipe, self.rng = xn, y, recipe, rng
        self.bank = bank if (bank is not None and background is not None and recipe.bank_ratio > 0) else None
        self.background = background
        self.room = room
        """Normalised background windows of the user's own room (bank sounds are mixed into them)."""
        self._pool: np.ndarray | None = None
        self.positive = np.array([background is None or int(c) != background for c in range(int(y.max()) + 1)])
        self.unknown = int(y.max()) + 1 if self.bank is not None and recipe.bank_class else None
        """The class index bank windows train (None: they train the background class)."""

    def epoch(self, order: np.ndarray, batch_size: int):
        """Yield ``(x, y, weights, n_user)`` mini-batches (the user's ``n_user`` windows first) over ``order``. Augmentation is drawn for the whole
        epoch at once: per-batch numpy calls on 16 windows cost more in overhead than in work."""
        r, rng = self.recipe, self.rng
        x, y = self.xn[order], self.y[order]
        if self.bank is not None and r.mix_prob > 0:
            x = self._mix_positives(x, y)
        if r.warp_prob > 0:
            x = self._warp_positives(x, y)
        if r.reverb_prob > 0:
            x = self._reverb_positives(x, y)
        if r.gain_jitter_db > 0:
            # In the dB domain a gain is an offset: shift each window by its own random level.
            g = rng.uniform(-r.gain_jitter_db, r.gain_jitter_db, size=(x.shape[0], 1, 1))
            x = x + (g / net.NORM_STD).astype(x.dtype)
        per = max(1, int(round(batch_size * r.bank_ratio))) if self.bank is not None else 0
        if per:
            nbatches = -(-order.size // batch_size)
            neg = self._negatives(per * nbatches)
            if r.gain_jitter_db > 0:
                g = rng.uniform(-r.gain_jitter_db, r.gain_jitter_db, size=(neg.shape[0], 1, 1))
                neg = neg + (g / net.NORM_STD).astype(neg.dtype)
            ny = np.full(per, self.unknown if self.unknown is not None else self.background, y.dtype)
        for k, b in enumerate(range(0, order.size, batch_size)):
            xb, yb = x[b:b + batch_size], y[b:b + batch_size]
            if not per:
                yield xb, yb, None, yb.size
                continue
            weights = np.concatenate((np.ones(yb.size, np.float32), np.full(per, r.bank_weight, np.float32)))
            yield np.concatenate((xb, neg[k * per:(k + 1) * per])), np.concatenate((yb, ny)), weights, yb.size

    def _bank_db(self, n: int) -> np.ndarray:
        lo, hi = self.recipe.bank_gain_db
        assert self.bank is not None, "called only when the recipe mixes a bank in"
        w = self.bank.sample(self.rng, n)
        return w + self.rng.uniform(lo, hi, size=(n, 1, 1)).astype(np.float32)

    def _negatives(self, n: int) -> np.ndarray:
        """``n`` bank sounds played in the user's room, drawn from a pool mixed once per training
        (each epoch re-levels them with the gain jitter)."""
        if self._pool is None:
            from edge.model.bank import power_add_db
            m = max(NEGATIVE_POOL, n)
            pool = np.empty((m, *self.xn.shape[1:]), np.float32)
            # NOTE: mixed in slices: the temporaries of one 6,000-window mix were ~70 MB of peak RSS.
            for a in range(0, m, 1000):
                w = self._bank_db(min(1000, m - a))
                if self.room is not None and self.room.shape[0]:
                    room = self.room[self.rng.integers(0, self.room.shape[0], size=w.shape[0])]
                    w = power_add_db(w, room * net.NORM_STD + net.NORM_MEAN)
                pool[a:a + w.shape[0]] = net.normalize(w)
            self._pool = pool
        return self._pool[self.rng.integers(0, self._pool.shape[0], size=n)]

    def _pick(self, yb: np.ndarray, prob: float) -> np.ndarray:
        """Indices of the sound (not background) windows an augmentation of share ``prob`` changes."""
        return np.flatnonzero(self.positive[yb] & (self.rng.random(yb.size) < prob))

    def _warp_positives(self, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
        """Vocal-tract-length-style warping of the bins axis plus a linear dB tilt, per window."""
        r, rng = self.recipe, self.rng
        pick = self._pick(yb, r.warp_prob)
        if pick.size == 0:
            return xb
        xb = xb.copy()
        bins = xb.shape[2]
        alpha = rng.uniform(1 - r.warp, 1 + r.warp, size=(pick.size, 1))
        src = np.clip(np.arange(bins)[None, :] / alpha, 0, bins - 1)          # [n, bins]
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, bins - 1)
        frac = (src - lo).astype(np.float32)[:, None, :]
        w = xb[pick]
        lo3 = np.broadcast_to(lo[:, None, :], w.shape)
        hi3 = np.broadcast_to(hi[:, None, :], w.shape)
        warped = np.take_along_axis(w, lo3, 2) * (1 - frac) + np.take_along_axis(w, hi3, 2) * frac
        tilt = rng.uniform(-r.tilt_db, r.tilt_db, size=(pick.size, 1, 1)) / net.NORM_STD
        ramp = np.linspace(-0.5, 0.5, bins, dtype=np.float32)[None, None, :]
        xb[pick] = (warped + tilt * ramp).astype(xb.dtype)
        return xb

    def _reverb_positives(self, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
        """Some sound windows get a room's reverberant tail (see :func:`edge.model.augment.reverb_db`)."""
        from edge.model.augment import reverb_db
        r, rng = self.recipe, self.rng
        pick = self._pick(yb, r.reverb_prob)
        if pick.size == 0:
            return xb
        xb = xb.copy()
        decay = rng.uniform(*r.reverb_decay_db, size=(pick.size, 1))
        wet = rng.uniform(*r.reverb_wet_db, size=(pick.size, 1))
        xb[pick] = net.normalize(reverb_db(xb[pick] * net.NORM_STD + net.NORM_MEAN, decay, wet)).astype(xb.dtype)
        return xb

    def _mix_positives(self, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
        """Some sound windows get talk/music behind them, SNR dB below the window's own level."""
        from edge.model.bank import levels_db, power_add_db
        pick = self._pick(yb, self.recipe.mix_prob)
        if pick.size == 0:
            return xb
        xb = xb.copy()
        sound = xb[pick] * net.NORM_STD + net.NORM_MEAN
        assert self.bank is not None, "called only when the recipe mixes a bank in"
        noise = self.bank.sample(self.rng, pick.size)
        lo, hi = self.recipe.mix_snr_db
        snr = self.rng.uniform(lo, hi, size=pick.size)
        shift = levels_db(sound) - snr - levels_db(noise)
        xb[pick] = net.normalize(power_add_db(sound, noise + shift[:, None, None].astype(np.float32)))
        return xb


def train(x_db: np.ndarray, y: np.ndarray, labels: tuple[str, ...], recipe: Recipe = Recipe(),
          progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
          groups: np.ndarray | None = None, bank=None, background: int | None = None) -> TrainResult:
    """Fit the network to dB windows ``x_db`` [N, 3, 232] with class indices ``y``.

    ``groups`` (a hold id per window) makes validation hold out whole holds; ``bank`` (an
    :class:`edge.model.bank.Bank`) with the ``background`` class index mixes its negatives in."""
    import time
    t0 = time.perf_counter()
    counts = check_counts(y, labels, recipe.min_examples)
    rng = np.random.default_rng(recipe.seed)
    xn = net.normalize(np.asarray(x_db, dtype=np.float32))
    if groups is not None:
        tr, va = split_by_group(y, np.asarray(groups), recipe.validation_split, rng, background)
    else:
        tr, va = split_balanced(y, recipe.validation_split, rng)
    room = xn[tr][y[tr] == background] if background is not None else None
    batches = BatchMaker(xn, y, recipe, rng, bank, background, room)
    params = net.init_params(len(labels), rng, unknown_into=background if batches.unknown is not None else None,
                             depth=recipe.depth)
    adam = Adam(params, recipe.learning_rate)
    history: list[EpochStats] = []

    def run_epoch(order: np.ndarray) -> tuple[float, float]:
        tot_loss = tot_ok = 0.0
        for xb, yb, wb, n in batches.epoch(order, recipe.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingError("training cancelled")
            loss, grads, probs = net.loss_and_grads(params, xb, yb, wb)
            adam.step(params, grads)
            tot_loss += loss * n
            tot_ok += float(np.sum(net.fold(probs[:n], params.unknown_into).argmax(1) == yb[:n]))
        return tot_loss / order.size, tot_ok / order.size

    refit = recipe.refit_epochs if va.size else 0
    total = recipe.epochs + refit
    for epoch in range(1, recipe.epochs + 1):
        loss, acc = run_epoch(rng.permutation(tr))
        val_loss = val_acc = None
        if va.size:
            vp = net.forward(params, xn[va])
            val_loss = float(-np.mean(np.log(np.clip(vp[np.arange(va.size), y[va]], 1e-12, None))))
            val_acc = float(np.mean(vp.argmax(1) == y[va]))
        history.append(EpochStats(epoch, loss, acc, val_loss, val_acc))
        if progress is not None:
            progress(epoch, total, loss, acc, val_loss, val_acc)
    validated = params.copy() if refit else None
    everything = np.arange(y.size)
    for epoch in range(recipe.epochs + 1, total + 1):
        # NOTE: the held-out holds were measured; now the model learns from them too (a user with three
        # holds per class cannot spare one), and the report keeps the figures of `validated`.
        loss, acc = run_epoch(rng.permutation(everything))
        if progress is not None:
            progress(epoch, total, loss, acc, None, None)
    return TrainResult(params, tuple(labels), history, counts, time.perf_counter() - t0, tr, va, validated)


class Adam:
    """Adam as Keras / TF.js implement it (β1 0.9, β2 0.999, ε 1e-7)."""

    def __init__(self, params: net.Params, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7):
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m = [np.zeros_like(a) for a in params.arrays()]
        self.v = [np.zeros_like(a) for a in params.arrays()]
        self.t = 0

    def step(self, params: net.Params, grads: net.Params) -> None:
        self.t += 1
        lr_t = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for name, m, v, g in zip(net.Params.NAMES, self.m, self.v, grads.arrays()):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            w = getattr(params, name)
            w -= (lr_t * m / (np.sqrt(v) + self.eps)).astype(w.dtype)


def evaluate(params: net.Params, x_db: np.ndarray, y: np.ndarray, num_classes: int) -> dict:
    """Accuracy, per-class precision/recall and the confusion matrix (rows = truth)."""
    pred = net.forward(params, net.normalize(x_db.astype(np.float32))).argmax(1)
    return confusion_report(y, pred, num_classes)


def confusion_report(y: np.ndarray, pred: np.ndarray, num_classes: int) -> dict:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
    return {"accuracy": float(tp.sum() / max(1, cm.sum())), "precision": precision.tolist(),
            "recall": recall.tolist(), "confusion": cm.tolist()}
