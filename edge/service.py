"""The composition root: builds every stage from the config, runs the loop, shuts down cleanly.

Only this module (and ``cli``) knows every part. Stages receive their collaborators here and
never look each other up; each IO client is built in one ``_make_*`` function so a test can
swap it for a fake.

What the daemon survives and what it dies on (deliberately):

* survives: a broker that is absent, restarts or refuses us (the device works from its buttons);
  bad MQTT payloads; a failed training (old model stays); a full disk (collection refused);
  a microphone that errors (reopened with backoff); a damaged model pointer or newest model
  (the newest whole model in history serves); a read-only state dir or a damaged example store
  (it listens with the model; collection and training are refused with the cause and the fix).
  Each is said once: a log warning, an ``error`` event, ``problems`` in the state.
* dies (systemd restarts it): a bad config, a state dir that cannot be created, a hung loop (watchdog).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np

from edge import __version__
from edge.audio.ring import Ring
from edge.audio.choose import make_source
from edge.audio.sources import AudioSource
from edge.config import SAMPLE_RATE, Config
from edge.engine.core import Engine
from edge.errors import AudioError, ConfigError, EdgeError, StoreError
from edge.teach.hold_audio import HoldAudioShelf
from edge.events import DecisionMade, ErrorOccurred, EventBus
from edge.memory import configure_malloc, release_free_heap

log = logging.getLogger(__name__)

AUDIO_RETRY_MAX_S = 30.0


@dataclass(frozen=True)
class RunOptions:
    simulate: bool = False
    """Mock pins; synthetic audio unless a WAV or script is given (or audio.source says otherwise)."""
    wav: str | None = None
    script: str | None = None
    realtime: bool | None = None
    loop: bool | None = None
    duration_s: float | None = None
    """Stop after this much stream time (tests, demos); None = until signalled."""
    mqtt: bool | None = None
    """Override mqtt.enabled."""
    buttons: bool = True


def _make_store(config: Config):
    from edge.teach.store import ExampleStore
    return ExampleStore(config.state.store)


def _make_registry(config: Config):
    from edge.model.registry import ModelRegistry
    return ModelRegistry(config.state.models, keep=config.train.keep_models)


def _make_trainer(config: Config, store, registry):
    from edge.model.pipeline import train_from_store
    return functools.partial(train_from_store, store, registry, config)


def _make_telemetry(config: Config, engine: Engine):
    from edge.telemetry.mqtt import MqttTelemetry
    return MqttTelemetry(config.mqtt, config.device.id, engine, __version__)


def _make_web(config: Config, engine: Engine, telemetry=None):
    if not config.web.listen:
        return None
    from edge.web.server import WebConsole

    def snapshot() -> dict:
        # NOTE: the console's health shows the MQTT link too; the engine's report does not know MQTT.
        return {**engine.snapshot(), "mqtt": {"enabled": telemetry is not None,
                                              "connected": bool(telemetry is not None and telemetry.connected)}}
    try:
        return WebConsole(config.web, engine, snapshot, HoldAudioShelf.for_config(config))
    except ConfigError as exc:
        log.warning("%s; the device runs without the console", exc)
        return None
    except OSError as exc:
        # NOTE: the console is a convenience: a taken port must not keep the device from working.
        log.warning("web.listen = %r: cannot listen (%s); the device runs without the console; "
                    "set web.listen to another port, or '' to turn the console off",
                    config.web.listen, exc.strerror or exc)
        return None


def _make_notifier():
    from edge.systemd import Notifier
    return Notifier.from_env()


def _make_source(config: Config, ring: Ring, options: RunOptions) -> AudioSource:
    script = options.script
    if options.simulate and not options.wav and not script and config.audio.source == "pyaudio":
        from edge.audio.sources import SyntheticSource
        script = SyntheticSource.DEFAULT_SCRIPT
    return make_source(config.audio, ring, wav=options.wav, script=script, realtime=options.realtime,
                       loop=options.loop)


def _make_hardware(config: Config, simulate: bool, with_buttons: bool):
    from edge.device.leds import StatusLed
    from edge.device.pins import make_pin_factory
    from edge.device.slider import Slider, make_output
    factory = make_pin_factory(simulate)
    output = make_output(config.slider, pin_factory=factory)
    slider = Slider(output, config.slider, config.state.position,
                    save_interval=config.service.position_save_s)
    led = StatusLed(config.buttons.status_led, pin_factory=factory)
    return factory, slider, led


class Service:
    """A built device: source → ring → engine, with buttons, slider, LED, MQTT and systemd around it."""

    def __init__(self, config: Config, options: RunOptions = RunOptions()):
        self.config = config
        self.options = options
        self._stop = threading.Event()
        self._closers: list = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        config, options = self.config, self.options
        configure_malloc()
        try:
            config.state_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"state dir {config.state_path}: cannot create ({exc.strerror}); "
                             "set --state-dir or device.state_dir") from None
        self.bus = EventBus()
        store_problem = None
        try:
            self.store = _make_store(config)
        except StoreError as exc:
            # NOTE: a read-only or damaged store must not keep a good model from listening.
            from edge.teach.store import UnavailableStore
            store_problem = str(exc)
            self.store = UnavailableStore(config.state.store, store_problem)
        self._closers.append(self.store.close)
        self.registry = _make_registry(config)
        self.pin_factory, self.slider, self.led = _make_hardware(config, options.simulate, options.buttons)
        # NOTE: closed in reverse: park (save, detach) before the devices close.
        self._closers += [self.led.close, self.slider.close, self.slider.park]
        classifier, model_problem = self.registry.load_serving(expect_hop=config.frontend.hop)
        self.engine = Engine(config, store=self.store, registry=self.registry, slider=self.slider, led=self.led,
                             bus=self.bus, classifier=classifier,
                             trainer=_make_trainer(config, self.store, self.registry))
        if model_problem:
            self.engine.report_problem("model", "model", model_problem)
        if store_problem:
            self.engine.report_problem("store", "store", store_problem)
        self.ring = Ring(int(config.audio.ring_seconds * SAMPLE_RATE), max_write=4096)
        self.source = _make_source(config, self.ring, options)
        self.engine.audio_health = self._audio_health
        self.buttons = None
        if options.buttons:
            from edge.device.buttons import ButtonPanel
            self.buttons = ButtonPanel(config, self._on_button, pin_factory=self.pin_factory)
            self._closers.append(self.buttons.close)
        self.telemetry = None
        mqtt_on = config.mqtt.enabled if options.mqtt is None else options.mqtt
        if mqtt_on:
            self.telemetry = _make_telemetry(config, self.engine)
            self.bus.subscribe(self.telemetry.on_event)
        self.web = _make_web(config, self.engine, self.telemetry)
        if self.web is not None:
            self.bus.subscribe(self.web.on_event)
            self.engine.tap = self.web       # the live spectrogram: the exact front-end frames
            self._closers.append(self.web.stop)
        self.bus.subscribe(_log_event)
        self.notifier = _make_notifier()
        self._audio_error: str | None = None
        self._audio_retry_at = 0.0
        self._audio_backoff = 1.0
        release_free_heap()

    # ------------------------------------------------------------------ callbacks
    def _on_button(self, event) -> None:
        """From gpiozero's threads (or the caller's, on mock pins): hand over to the loop thread."""
        from edge.device import buttons as b
        engine = self.engine
        actions = {
            b.CollectPressed: "press", b.CollectReleased: "release", b.TrainRequested: "train",
            b.DiscardRequested: "discard", b.ListenToggled: "toggle",
        }
        action = actions.get(type(event))
        if action is not None:
            engine.call(_quietly, engine.on_button, action, getattr(event, "label", None), wait=False)

    def _audio_health(self) -> dict:
        return {"overruns": self.ring.overruns, "source": self.source.describe(),
                "error": self._audio_error or self.source.error}

    # ------------------------------------------------------------------ running
    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """The main loop; returns when signalled, when a finite source ends, or after duration_s."""
        engine = self.engine
        engine.adopt_thread()
        self._install_signals()
        if self.telemetry is not None:
            self.telemetry.start()
        if self.web is not None:
            self.web.start()
        engine.start_reporting()          # start-up problems: now MQTT's queue is there to carry them
        self._start_source()
        engine.begin()
        self.notifier.ready()
        log.info("edge-slider %s running: source %s, model %s, mode %s", __version__, self.source.describe(),
                 getattr(engine.classifier, "version", None), engine.mode)
        buf = np.empty(self.ring.capacity, dtype=np.float32)
        wd_interval = self.notifier.watchdog_interval
        next_wd = time.monotonic()
        limit = None if self.options.duration_s is None else int(self.options.duration_s * SAMPLE_RATE)
        consumed = 0
        try:
            while not self._stop.is_set():
                self.ring.wait(0.05)
                samples = self.ring.read_new(buf)
                if limit is not None and consumed + samples.shape[0] > limit:
                    samples = samples[:limit - consumed]
                consumed += samples.shape[0]
                engine.process(samples)
                engine.poll()
                now = time.monotonic()
                if wd_interval and now >= next_wd:
                    self.notifier.watchdog()
                    next_wd = now + wd_interval
                if limit is not None and consumed >= limit:
                    break
                if self.source.finished and self.ring.available() == 0:
                    # NOTE: let queued calls (a final button release) land before leaving.
                    engine.poll()
                    break
                self._check_audio(now)
        finally:
            self.notifier.stopping()
            engine.shutdown()
            engine.poll()
        return 0

    def _start_source(self) -> None:
        try:
            self.source.start()
            self._audio_error = None
        except AudioError as exc:
            self._audio_error = str(exc)
            self.bus.publish(ErrorOccurred("audio", str(exc)))
            log.error("audio source failed: %s (retrying in %.0f s)", exc, self._audio_backoff)
            self._audio_retry_at = time.monotonic() + self._audio_backoff
            self._audio_backoff = min(self._audio_backoff * 2, AUDIO_RETRY_MAX_S)

    def _check_audio(self, now: float) -> None:
        healthy = getattr(self.source, "healthy", None)
        if self._audio_error is None and (healthy is None or healthy()):
            self._audio_backoff = 1.0
            return
        if self._audio_error is None:
            self._audio_error = self.source.error or "audio stream stopped delivering"
            self.bus.publish(ErrorOccurred("audio", self._audio_error))
            log.error("audio source failed: %s", self._audio_error)
            self._audio_retry_at = now + self._audio_backoff
        if now >= self._audio_retry_at:
            self.source.stop()
            self._start_source()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())

    def close(self) -> None:
        """Release everything in reverse order of construction; safe to call twice."""
        source = getattr(self, "source", None)
        if source is not None:
            source.stop()
        telemetry = getattr(self, "telemetry", None)
        if telemetry is not None:
            telemetry.stop()
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # noqa: BLE001 - keep closing the rest
                log.exception("error while closing")
        self._closers.clear()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quietly(fn, *args) -> None:
    """Button actions have no caller to answer: refusals are already reported as events."""
    try:
        fn(*args)
    except EdgeError as exc:
        log.debug("button action refused: %s", exc)


def _log_event(event) -> None:
    if isinstance(event, DecisionMade):
        log.info("decision: %s (%.2f) at t=%.2f s → position %.1f", event.label, event.score, event.t,
                 event.position)


def run_daemon(config: Config, options: RunOptions) -> int:
    with Service(config, options) as service:
        return service.run()

