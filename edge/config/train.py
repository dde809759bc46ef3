"""The ``[train]`` section: how a model is trained."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.fields import _doc


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = _doc("Training epochs.", default=20, min=1, max=1000)
    batch_size: int = _doc("Mini-batch size.", default=16, min=1, max=4096)
    learning_rate: float = _doc("Adam learning rate.", default=0.003, min=1e-6, max=1.0)
    validation_split: float = _doc("Fraction of each class held out for validation.", default=0.15, min=0.0, max=0.5)
    seed: int = _doc("Random seed (same data + seed = same model).", default=0, min=0)
    gain_jitter_db: float = _doc("Shift each training window by a random level within ± this many dB every epoch, "
                                 "so sounds are recognised nearer or farther from the mic than taught; 0 = off.",
                                 default=12.0, min=0.0, max=40.0)
    min_examples: int = _doc("Fewest examples per class before training is allowed.", default=10, min=2)
    warp_prob: float = _doc("Share of your sound windows trained re-shaped: frequencies stretched up to ±8 % and the "
                            "band tilted up to ±6 dB (other voices, another mic or room); measured to cost recall at every "
                            "false-move budget, so off by default.", default=0.0, min=0.0,
                            max=1.0)
    reverb_prob: float = _doc("Share of your sound windows trained with a room's reverberant tail (decaying 1.5-6 dB "
                              "per hop, 3-12 dB below the sound), so a sound taught dry is found in a tiled room; "
                              "0.3 found more knocks but made more false moves on the room benchmark, so off by "
                              "default.", default=0.0, min=0.0, max=1.0)
    depth: int = _doc("Filters of the model's convolution (its depth multiplier): the codelab's 8, or more "
                      "to tell a taught sound from sounds like it (costs training time and a larger file).",
                      default=8, min=1, max=64)
    refit_epochs: int = _doc("After validating on held-out holds, train this many more epochs on every example "
                             "(the held-out holds too); 0 = install the validated model.", default=3, min=0, max=1000)
    bank: bool = _doc("Mix the shipped background bank (talk in 13 languages, music, effects) into every training "
                      "as background, so sounds nobody taught do not move the slider.", default=True)
    bank_ratio: float = _doc("Bank windows per user window in each mini-batch (0.5 trains in ~2/3 of the time but "
                             "found fewer knocks and snaps on the room benchmark).", default=1.0, min=0.0, max=20.0)
    bank_weight: float = _doc("Loss weight of a bank window relative to one of yours.", default=1.0, min=0.0,
                              max=100.0)
    bank_class: bool = _doc("Train the bank's sounds as a class of their own (\"unknown\") beside your background "
                            "class instead of as background; the model adds the two, so decisions only change "
                            "by what it learnt.", default=False)
    mix_prob: float = _doc("Share of your sound windows trained with bank talk/music mixed in behind them "
                           "(5-25 dB below the sound); measured to cost recall and add false moves, so off by "
                           "default.", default=0.0, min=0.0, max=1.0)
    keep_models: int = _doc("How many model versions the registry keeps for rollback.", default=5, min=1, max=100)
