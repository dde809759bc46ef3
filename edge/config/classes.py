"""The ``[classes.<label>]`` tables and the ``[collect]`` section: what is taught and how holds are stored."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config.fields import NO_PIN, SLIDER_MAX, _doc


@dataclass(frozen=True)
class ClassSpec:
    name: str = _doc("Label of the class.", default="")
    action: str = _doc("What a decision for this class does to the slider: step (add value), set "
                       "(go to value), none.", default="none", choices=("step", "set", "none"))
    value: float = _doc("Step size or target position, in slider units (0..10).", default=0.0, min=-SLIDER_MAX,
                         max=SLIDER_MAX)
    button: int = _doc("BCM pin of the button that collects this class while held; -1 = no button.",
                       default=NO_PIN)
    background: bool = _doc("This class is the background: quiet windows of other classes' holds go here, "
                            "and it is never energy-gated.", default=False)

    def validate(self) -> list[str]:
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            return [f"classes.{self.name or '?'}: a label uses letters, digits, '-' and '_' only"]
        return []


DEFAULT_CLASSES = (
    ClassSpec("left", "step", -0.1, 17),
    ClassSpec("right", "step", 0.1, 27),
    ClassSpec("noise", "none", 0.0, 22, background=True),
)


@dataclass(frozen=True)
class CollectSettings:
    gate: bool = _doc("Energy gate: store only windows of a hold that are louder than the hold's own floor; "
                      "quiet windows go to the background class (or are dropped).", default=True)
    gate_db: float = _doc("How far above the hold's floor a window's level must be to count as the sound, dB.",
                          default=10.0, min=0.0, max=60.0)
    floor_percentile: float = _doc("The hold's floor is this percentile of its window levels (with the pre-roll).",
                                   default=20.0, min=0.0, max=50.0)
    quiet_to_background: bool = _doc("Store the gated-out quiet windows as background examples (false = drop them).",
                                     default=True)
    max_hold_s: float = _doc("A hold longer than this stops collecting (protects memory), seconds.",
                             default=30.0, min=1.0, max=600.0)
    discard_hold_s: float = _doc("Holding the Train button this long discards the last collected session "
                                 "instead of training, seconds.", default=3.0, min=1.0, max=30.0)
    max_windows_per_collection: int = _doc("Most windows one collection (a hold, or one file of `collect "
                                           "--from-wav`) stores, all classes together; the earliest are kept, "
                                           "the rest skipped with a message (a 1-hour file is 155,000 windows).",
                                           default=4000, min=1, max=20000)
