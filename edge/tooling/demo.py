"""``edge-slider demo``: the codelab story on mock hardware, scripted, in well under a minute.

Synthesize snaps (left), whistles (right) and talk + noise (noise); "hold" each class's mock
button while its sound plays; press Train; then listen to a fresh scene (other random sounds,
another gain) and follow the servo. The same helpers drive the end-to-end tests.

The audio is pushed through the engine block by block on this thread (exactly what the daemon's
loop does with the ring), so the story is deterministic and runs faster than real time.

Where it writes: a scratch dir of its own, unless told ``--into DIR`` (``deploy/dev.sh run`` keeps
the demo's model that way). A dir is the demo's when it is empty or carries the demo's marker
(``StateDir.demo_marker``: how many rows the demo left, and its last row id); a dir with anything else in its
store or registry is refused, untouched — once a user's real store got 1,512 synthetic windows and
a new model. In its own dir a re-run replaces its previous examples instead of doubling them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.audio import synth
from edge.config import SAMPLE_RATE, SLIDER_MAX, SLIDER_MIN, Config
from edge.errors import UsageError
from edge.fileio import atomic_write_bytes
from edge.events import DecisionMade, Event, TrainingFinished, TrainingProgress
from edge.service import RunOptions, Service
from edge.statedir import StateDir

log = logging.getLogger(__name__)

BLOCK = 1024

TRAIN_SCENES = {
    "left": ", ".join(["gap:0.35", "snap"] * 24) + ", gap:0.3",
    "right": ", ".join(["gap:0.3", "whistle:0.5"] * 14) + ", gap:0.3",
    "noise": "gap:1, babble:3, noise:1.5, gap:1, babble:2, gap:0.5",
}
TEST_SCENE = ("gap:1, snap, gap:1.2, snap, gap:1.2, whistle, gap:1.2, babble:2, gap:1.2, whistle:0.6, "
              "gap:1.2, whistle, gap:1, noise:1, gap:1")


def _store_mark(state: Path) -> dict:
    from edge.teach.store import ExampleStore
    db = StateDir(state).store
    if not db.exists():
        return {"rows": 0, "last_id": 0}
    with ExampleStore(db) as store:
        return {"rows": len(store), "last_id": store.last_id()}


def claim_state_dir(state: Path) -> None:
    """Make sure ``state`` holds nothing but the demo's own data, then drop its previous examples.

    Raises UsageError (and touches nothing) for a dir with examples or models the demo did not write.
    """
    from edge.model.registry import ModelRegistry
    from edge.teach.store import ExampleStore
    state = Path(state)
    mark = _store_mark(state)
    models = ModelRegistry(StateDir(state).models).versions()
    try:
        saved = json.loads(StateDir(state).demo_marker.read_text())
    except (OSError, ValueError):
        saved = None
    ours = (saved is not None and {k: saved.get(k) for k in mark} == mark) or (mark["rows"] == 0 and not models)
    if not ours:
        what = f"{mark['rows']} examples" + (f" and model(s) v{', v'.join(map(str, models))}" if models else "")
        raise UsageError(f"{state} holds {what} that are not the demo's: the demo never writes there; run "
                         "`edge-slider demo` (a scratch dir of its own) or `edge-slider demo --into NEW_DIR`")
    if mark["rows"]:
        with ExampleStore(StateDir(state).store) as store:
            store.delete()                       # the demo's own previous run: replaced, not doubled
    mark_state_dir(state)


def mark_state_dir(state: Path) -> None:
    """Record what the demo left, so the next ``demo --into`` recognises the dir as its own."""
    Path(state).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(StateDir(Path(state)).demo_marker, json.dumps(_store_mark(Path(state))).encode())


def expected_position(start: float, onsets: list[synth.Onset], steps: dict[str, float]) -> float:
    pos = start
    for o in onsets:
        label = synth.DEMO_LABELS.get(o.kind)
        if label in steps:
            pos = min(SLIDER_MAX, max(SLIDER_MIN, pos + steps[label]))
    return round(pos, 6)


def feed(service: Service, samples: np.ndarray) -> None:
    """Push audio through the engine in hop-sized blocks, as the daemon loop does."""
    engine = service.engine
    for i in range(0, samples.shape[0], BLOCK):
        engine.process(samples[i:i + BLOCK])
        engine.poll()


def hold_button(service: Service, pin: int, samples: np.ndarray) -> None:
    """Hold a mock button (pin low) while ``samples`` play, then release it."""
    gpio = service.pin_factory.pin(pin)
    _settle(service)
    gpio.drive_low()
    t0 = time.monotonic()
    service.engine.poll()
    feed(service, samples)
    # NOTE: the panel does not trust a release inside the debounce window: hold at least that long.
    time.sleep(max(0.0, service.config.buttons.debounce_s * 1.2 - (time.monotonic() - t0)))
    gpio.drive_high()
    service.engine.poll()


def _settle(service: Service) -> None:
    """Wait out the panel's debounce window, so the next edge is taken at once and not as a bounce
    of the previous release (a release and a press within ``debounce_s`` are one bounce)."""
    time.sleep(service.config.buttons.debounce_s * 1.2)


def press_button(service: Service, pin: int) -> None:
    gpio = service.pin_factory.pin(pin)
    _settle(service)
    gpio.drive_low()
    service.engine.poll()
    # NOTE: mock pins ignore bounce_time but the panel debounces in software: keep it down a moment.
    time.sleep(max(0.06, service.config.buttons.debounce_s * 1.5))
    gpio.drive_high()
    service.engine.poll()


STALL_S = 120.0
"""Training gives up when no epoch has finished for this long. Not a total budget: a slow CPU (a Pi
Zero 2 W, or emulation: 43-51 s for the demo's training under qemu against 3 s native) keeps
waiting as long as epochs keep coming."""


@dataclass
class TrainingWait:
    """How a :func:`wait_training` ended: ``finished`` is the engine's report, None on a timeout."""

    finished: TrainingFinished | None
    seconds: float
    stall_s: float
    timed_out: bool = False
    epoch: int = 0
    epochs: int = 0

    def failure(self) -> str | None:
        """One line saying why there is no model (None when training succeeded)."""
        if self.timed_out:
            return (f"training timed out after {self.seconds:.0f} s (no epoch finished for {self.stall_s:.0f} s; "
                    f"last epoch {self.epoch}/{self.epochs or '?'}): a slow CPU or a stuck trainer — give it "
                    f"longer with `edge-slider demo --train-stall SECONDS`, or run `edge-slider train` to see its output")
        if self.finished is None:
            return None   # not training (the engine never started): the caller sees no model
        if not self.finished.ok:
            return f"training failed: {self.finished.error}"
        return None


def wait_training(service: Service, timeout: float | None = None, quiet: np.ndarray | None = None,
                  progress=None) -> TrainingWait:
    """Keep audio flowing (background) while the training thread works, until it reports back or
    no epoch finished for ``timeout`` s (default :data:`STALL_S`).
    ``progress(text)`` gets one line per epoch."""
    quiet = quiet if quiet is not None else np.zeros(BLOCK, dtype=np.float32)
    stall = STALL_S if timeout is None else timeout
    t0 = time.monotonic()
    result = TrainingWait(None, 0.0, stall)
    last = [t0]

    def watch(event: Event) -> None:
        if isinstance(event, TrainingProgress):
            last[0] = time.monotonic()
            result.epoch, result.epochs = event.epoch, event.epochs
            if progress is not None:
                progress(f"  training: epoch {event.epoch}/{event.epochs} ({last[0] - t0:.0f} s)")
        elif isinstance(event, TrainingFinished):
            result.finished = event

    service.bus.subscribe(watch)
    try:
        while (service.engine.mode == "training" and result.finished is None
               and time.monotonic() - last[0] < stall):
            service.engine.process(quiet)
            service.engine.poll()
            time.sleep(0.01)
        service.engine.poll()
    finally:
        service.bus.unsubscribe(watch)
    result.seconds = time.monotonic() - t0
    result.timed_out = result.finished is None and service.engine.mode == "training"
    return result


@dataclass
class Trace:
    """What a listening run did."""

    decisions: list[DecisionMade] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, DecisionMade):
            self.decisions.append(event)


def score_decisions(decisions: list[DecisionMade], onsets: list[synth.Onset], tolerance_s: float = 0.6) -> dict:
    """Match decisions to the scene's sounds: hits, misses, wrong labels, false moves."""
    targets = [(o, synth.DEMO_LABELS.get(o.kind)) for o in onsets]
    used = set()
    hits = wrong = 0
    for o, label in targets:
        if label is None:
            continue
        match = next((i for i, d in enumerate(decisions) if i not in used
                      and o.start <= d.t <= o.start + o.duration + tolerance_s), None)
        if match is None:
            continue
        used.add(match)
        if decisions[match].label == label:
            hits += 1
        else:
            wrong += 1
    sounds = sum(1 for _, lb in targets if lb is not None)
    false_moves = len(decisions) - len(used)
    return {"sounds": sounds, "hits": hits, "wrong": wrong, "missed": sounds - hits - wrong,
            "false_moves": false_moves}


def demo_config(state_dir: Path) -> Config:
    cfg = Config().replace("device", state_dir=str(state_dir)).replace("mqtt", enabled=False).replace("web", listen="")
    # as `edge-slider demo`: the codelab recipe's level handling (no gain jitter) for the synthetic room
    return cfg.replace("train", min_examples=5, **synth.SYNTHETIC_ROOM_TRAINING)


def train_demo_model(state_dir: Path, seed: int = 1) -> Config:
    """Teach the mock device the demo's classes (as `edge-slider demo` does) and train a model."""
    cfg = demo_config(state_dir)
    with Service(cfg, RunOptions(simulate=True, mqtt=False, script="gap:0.1", loop=False)) as svc:
        for i, (label, script) in enumerate(TRAIN_SCENES.items()):
            samples, _ = synth.render(script, seed=seed * 100 + i)
            hold_button(svc, cfg.class_spec(label).button, samples)
        press_button(svc, cfg.buttons.train)
        wait_training(svc)
        if svc.engine.classifier is None:
            raise RuntimeError("demo training produced no model")
    return cfg


def run_demo(service: Service, seed: int = 1, out=print, train_stall_s: float = STALL_S) -> int:
    """The scripted story; returns 0 when the servo ends where the script says."""
    config = service.config
    pins = {c.name: c.button for c in config.classes}
    t0 = time.monotonic()
    for i, (label, script) in enumerate(TRAIN_SCENES.items()):
        samples, onsets = synth.render(script, seed=seed * 100 + i)
        hold_button(service, pins[label], samples)
        out(f"held {label:6s} button for {samples.shape[0] / SAMPLE_RATE:4.1f} s "
            f"({len(onsets)} sounds): {service.store.counts()}")
    out("pressing Train ...")
    press_button(service, config.buttons.train)
    waited = wait_training(service, timeout=train_stall_s, progress=out)
    clf = service.engine.classifier
    why = waited.failure()
    if why is not None or clf is None:
        out(why or "no model after pressing Train (training never started: see the log above)")
        return 1
    out(f"model v{getattr(clf, 'version', '?')} installed in {time.monotonic() - t0:.1f} s; mode: "
        f"{service.engine.mode}")
    if service.engine.mode != "listening":
        press_button(service, config.buttons.listen)
    trace = Trace()
    service.bus.subscribe(trace)
    start = service.slider.position
    samples, onsets = synth.render(TEST_SCENE, seed=seed * 100 + 99, gain_db=-4.0)
    # Decisions carry stream time; the scene starts after the training audio.
    offset = service.engine.samples_in / SAMPLE_RATE
    onsets = [dataclasses.replace(o, start=o.start + offset) for o in onsets]
    feed(service, samples)
    service.bus.unsubscribe(trace)
    steps = {c.name: c.value for c in config.classes if c.action == "step"}
    want = expected_position(start, onsets, steps)
    out(f"listening to a fresh {samples.shape[0] / SAMPLE_RATE:.1f} s scene "
        f"({', '.join(o.kind for o in onsets)}):")
    for d in trace.decisions:
        out(f"  t={d.t:5.2f} s  {d.label:6s} p={d.score:.2f}  → position {d.position:.1f}")
    score = score_decisions(trace.decisions, onsets)
    got = round(service.slider.position, 6)
    out(f"decisions: {score['hits']}/{score['sounds']} sounds right, {score['wrong']} wrong, "
        f"{score['missed']} missed, {score['false_moves']} false moves")
    out(f"servo position {got:.1f} (expected {want:.1f}) — {'OK' if abs(got - want) < 1e-6 else 'WRONG'}; "
        f"total {time.monotonic() - t0:.1f} s")
    return 0 if abs(got - want) < 1e-6 else 1
