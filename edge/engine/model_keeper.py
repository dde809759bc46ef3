"""Which model serves, and listening with it: the classifier in service, training, rolling back.

Training runs off the loop thread (:class:`edge.teach.training_job.TrainingJob`); its outcome comes back
through the engine's call queue, and only then, on the loop thread, is the new model put in service.
A model is bound to the configured classes once, when it starts to serve (:mod:`edge.engine.model_binding`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from edge.errors import EdgeError, StoreError
from edge.events import ErrorOccurred, ModelChanged, TrainingFinished
from edge.memory import release_free_heap
from edge.model.train import too_few
from edge.engine.model_binding import bind_model
from edge.engine.modes import Mode, ModeMachine
from edge.engine.problems import Problems, store_problem
from edge.teach.training_job import TrainingJob

log = logging.getLogger(__name__)


class ModelKeeper:
    def __init__(self, engine: Any, classifier: Any = None, trainer: Callable | None = None):
        self._engine = engine       # typed Any: the engine imports this module
        self._config, self._registry, self._bus = engine.config, engine.registry, engine.bus
        self._modes: ModeMachine = engine.modes
        self._problems: Problems = engine._problems
        self._trainer = trainer
        self.job: TrainingJob | None = None
        """The training in progress, if any."""
        self.classifier: Any = None
        self.listen_refusal: str | None = None
        """Why the model in service cannot listen (it detects none of the acting classes), or None."""
        self.use(classifier)

    def can_listen(self) -> bool:
        return self.classifier is not None and not self.listen_refusal

    def use(self, classifier: Any) -> None:
        """Put a model in service (:func:`edge.engine.model_binding.bind_model`)."""
        self.classifier = classifier
        self.listen_refusal = bind_model(classifier, self._engine.policy, self._config, self._problems)

    def listen(self, on: bool) -> dict[str, Any]:
        """Listening on (with a model that can) or off; off during a hold or a training only cancels
        the return to listening after it."""
        modes = self._modes
        if on:
            modes.allow("listen on")
            if self.classifier is None:
                modes.refuse("listen on", "no model installed: hold the class buttons to collect examples, "
                             "then press Train")
            if self.listen_refusal:
                modes.refuse("listen on", self.listen_refusal)
            if modes.mode != Mode.LISTENING:
                self._engine.policy.reset()
                modes.set(Mode.LISTENING)
        elif modes.mode == Mode.LISTENING:
            modes.set(Mode.IDLE)
        elif modes.mode in (Mode.TRAINING, Mode.COLLECTING):
            self._engine.resume_listening = False
        return {"listening": modes.mode == Mode.LISTENING}

    def train(self) -> dict[str, Any]:
        engine, modes = self._engine, self._modes
        modes.allow("train")
        if problem := store_problem(engine.store):
            modes.refuse("train", problem)
        try:
            counts = engine._refresh_counts()
        except StoreError as exc:
            modes.refuse("train", str(exc))
        if (problem := too_few(counts, self._config.labels, self._config.train.min_examples)) is not None:
            modes.refuse("train", problem)
        if self._trainer is None:
            modes.refuse("train", "no trainer available")
        engine.resume_listening = modes.mode == Mode.LISTENING
        modes.set(Mode.TRAINING)
        self.job = TrainingJob(self._trainer, self._bus,
                               lambda *outcome: engine.call(self._training_done, *outcome, wait=False))
        self.job.start()
        return {"started": True, "counts": counts}

    def _training_done(self, outcome, error: Exception | None, seconds: float) -> None:
        """On the loop thread, once the training thread has ended: serve its model, or keep the old one."""
        self.job = None
        release_free_heap()
        if error is None:
            try:
                classifier = self._registry.load_current(expect_hop=self._config.frontend.hop)
            except EdgeError as exc:
                error = exc
            else:
                self.use(classifier)
                self._problems.clear("model")         # a whole new model serves: the fallback is over
                val = getattr(outcome, "val_accuracy", None)
                self._bus.publish(ModelChanged(getattr(classifier, "version", None), tuple(classifier.labels), val))
                cal = getattr(outcome, "calibration", None)
                self._bus.publish(TrainingFinished(True, getattr(classifier, "version", None), val, seconds,
                                                   report=cal.to_dict() if cal is not None else None))
                log.info("training done in %.2f s: model v%s installed", seconds, getattr(classifier, "version", "?"))
        if error is not None:
            self._bus.publish(TrainingFinished(False, None, None, seconds, str(error)))
            self._bus.publish(ErrorOccurred("training", str(error)))
            log.error("training failed, previous model kept: %s", error)
        listen = self.can_listen() and (self._engine.resume_listening or self._config.listen.autostart)
        self._modes.set(Mode.LISTENING if listen else Mode.IDLE)

    def rollback(self) -> dict[str, Any]:
        self._modes.allow("model rollback")
        version = self._registry.rollback()
        self.use(self._registry.load_current(expect_hop=self._config.frontend.hop))
        self._problems.clear("model")
        self._bus.publish(ModelChanged(version, tuple(self.classifier.labels), None))
        return {"version": version}

    def stop(self) -> None:
        """Stop a training in progress (it checks the flag per batch)."""
        if self.job is not None:
            self.job.stop()
