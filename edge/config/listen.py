"""The ``[listen]`` section: when a prediction becomes a move of the slider."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.fields import _doc


@dataclass(frozen=True)
class ListenSettings:
    autostart: bool = _doc("Start listening at boot when a model is installed.", default=True)
    threshold: float = _doc("Smallest class probability that counts as a detection (the codelab's 0.75).",
                            default=0.75, min=0.0, max=1.0)
    mode: str = _doc("continuous: move every hop while the sound lasts (the codelab); per_sound: one action per "
                     "sound, re-armed after the class drops out.", default="per_sound",
                     choices=("continuous", "per_sound"))
    smooth_k: int = _doc("k of k-of-n smoothing: a class must win k of the last n hops.", default=2, min=1, max=50)
    smooth_n: int = _doc("n of k-of-n smoothing (1 = no smoothing).", default=3, min=1, max=50)
    refractory_s: float = _doc("After an action, ignore detections for this long, seconds.", default=0.3,
                               min=0.0, max=10.0)
    rearm_drop_db: float = _doc("per_sound: a new sound needs the level to fall this many dB below the last "
                                "sound's peak first (or 1 s without detections); 0 = re-arm on a detection gap "
                                "alone.", default=10.0, min=0.0, max=60.0)
    onset_db: float = _doc("per_sound: a sound acts only if it is this many dB louder than the median level of "
                           "the 0.6-0.2 s before it, or one steady sound all along (talk goes on as loud, "
                           "syllable after syllable; a taught sound starts out of something quieter); "
                           "0 = off.", default=12.0, min=0.0, max=60.0)
    min_level_db: float = _doc("Windows quieter than this (band power of the window, dB) never trigger an action.",
                               default=-100.0, min=-200.0, max=0.0)
    false_move_press_s: float = _doc("Pressing the background class's button this soon after a move marks the move "
                                     "wrong: it is undone and its sound becomes a background example, seconds "
                                     "(0 = off).", default=3.0, min=0.0, max=30.0)
    calibrated: bool = _doc("Use the per-class thresholds each training sets for max_false_per_min (false = "
                            "threshold for every class).", default=True)
    max_false_per_min: float = _doc("False-move budget the training calibrates the thresholds for, moves per "
                                    "minute of sounds it was not taught (estimated on the bank).", default=0.5,
                                    min=0.01, max=60.0)

    def validate(self) -> list[str]:
        if self.smooth_k > self.smooth_n:
            return [f"listen.smooth_k = {self.smooth_k} is larger than listen.smooth_n = {self.smooth_n}: "
                    "use k <= n"]
        return []
