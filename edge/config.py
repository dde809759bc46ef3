"""Configuration: one frozen dataclass per section, loaded file → environment → flags.

Lookup order for the file: ``--config``, ``$EDGE_SLIDER_CONFIG``, ``/etc/edge-slider/config.toml``,
``~/.config/edge-slider/config.toml``; with none of them the built-in defaults apply. Then any
``EDGE_SLIDER_<SECTION>_<KEY>`` environment variable overrides its key (``EDGE_SLIDER_MQTT_HOST=broker``),
then command-line flags. Every problem is collected and reported in one :class:`ConfigError`, each
naming the key, the bad value and what is allowed.

``config/edge-slider.toml`` documents every key; a test checks it matches the defaults here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from edge.errors import ConfigError
from edge.statedir import StateDir
from edge.web.settings import WebSettings

ENV_PREFIX = "EDGE_SLIDER_"
CONFIG_ENV = "EDGE_SLIDER_CONFIG"
PASSWORD_ENV = "EDGE_SLIDER_MQTT_PASSWORD"
SYSTEM_CONFIG = Path("/etc/edge-slider/config.toml")

#: BROWSER_FFT constants: fixed by the codelab, not configurable.
SAMPLE_RATE = 44_100
FFT_SIZE = 2048
NUM_BINS = 232
NUM_FRAMES = 3
SLIDER_MIN, SLIDER_MAX = 0.0, 10.0
"""The slider's range in slider units: the one place it is written (servo, MQTT, Home Assistant, config)."""

#: Bump when a key is renamed or removed (old keys stay accepted for one release).
CONFIG_VERSION = 1

# NOTE: a BCM pin value of -1 means "not connected" (TOML has no null).
NO_PIN = -1
VALID_BCM = range(0, 28)


def _user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edge-slider" / "config.toml"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """systemd's ``$STATE_DIRECTORY`` under the unit, else ``$XDG_STATE_HOME/edge-slider``."""
    env = os.environ if env is None else env
    if env.get("STATE_DIRECTORY"):
        # NOTE: systemd may pass several colon-separated dirs; the first is ours.
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-slider"


def _doc(text: str, **kw: Any) -> Any:
    """A dataclass field with a default and a one-line doc (unit or range)."""
    default = kw.pop("default")
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"doc": text, **kw})


@dataclass(frozen=True)
class DeviceSettings:
    id: str = _doc("Device id: names the MQTT base topic and the HA device; letters, digits, - and _.",
                   default="edge-slider")
    state_dir: str = _doc("Where examples, models and the slider position live; '' = $STATE_DIRECTORY "
                          "under systemd, else ~/.local/state/edge-slider.", default="")

    def validate(self) -> list[str]:
        ok = self.id and all(c.isalnum() or c in "-_" for c in self.id)
        return [] if ok else [f"device.id = {self.id!r}: use letters, digits, '-' and '_' only"]

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser() if self.state_dir else default_state_dir()


@dataclass(frozen=True)
class AudioSettings:
    source: str = _doc("Where audio comes from: pyaudio (a microphone), wav (replay a file), "
                       "synthetic (scripted demo sounds).", default="pyaudio", choices=("pyaudio", "wav", "synthetic"))
    device: str = _doc("PyAudio input device: an index, or a substring of its name; '' = the default input.",
                       default="")
    wav: str = _doc("WAV file for source = wav.", default="")
    loop: bool = _doc("source = wav/synthetic: start again at the end instead of stopping.", default=True)
    realtime: bool = _doc("source = wav/synthetic: deliver audio at real-time pace (false = as fast as possible).",
                          default=True)
    ring_seconds: float = _doc("Ring buffer capacity in seconds: how long the loop may stall before audio is "
                               "lost (overruns).", default=4.0, min=1.0, max=120.0)
    buffer_frames: int = _doc("Samples per PortAudio callback (1024 = one hop).", default=1024, min=64, max=16384)
    gain_db: float = _doc("Software gain applied to every sample, dB (0 = none).", default=0.0, min=-40.0, max=40.0)

    def validate(self) -> list[str]:
        if self.source == "wav" and not self.wav:
            return ["audio.wav is empty but audio.source = 'wav': set audio.wav to a .wav file"]
        return []


@dataclass(frozen=True)
class FrontendSettings:
    hop: int = _doc("Samples between frames: 1024 as the browser (23.2 ms), or 512 for half the latency "
                    "at twice the CPU (a model trained at one hop works at the other only approximately).",
                    default=1024, choices=(1024, 512))
    db_floor: float = _doc("dB value that replaces -inf (digital silence) and anything below it.",
                           default=-160.0, min=-400.0, max=-60.0)


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
    refit_epochs: int = _doc("After validating on held-out holds, train this many more epochs on every example "
                             "(the held-out holds too); 0 = install the validated model.", default=3, min=0, max=1000)
    bank: bool = _doc("Mix the shipped background bank (talk in 13 languages, music, effects) into every training "
                      "as background, so sounds nobody taught do not move the slider.", default=True)
    bank_ratio: float = _doc("Bank windows per user window in each mini-batch (0.5 trains in ~2/3 of the time but "
                             "found fewer knocks and snaps on the room benchmark).", default=1.0, min=0.0, max=20.0)
    bank_weight: float = _doc("Loss weight of a bank window relative to one of yours.", default=1.0, min=0.0,
                              max=100.0)
    mix_prob: float = _doc("Share of your sound windows trained with bank talk/music mixed in behind them "
                           "(5-25 dB below the sound); measured to cost recall and add false moves, so off by "
                           "default.", default=0.0, min=0.0, max=1.0)
    keep_models: int = _doc("How many model versions the registry keeps for rollback.", default=5, min=1, max=100)


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


@dataclass(frozen=True)
class ButtonSettings:
    train: int = _doc("BCM pin of the Train button (hold for collect.discard_hold_s to discard the last session).",
                      default=23)
    listen: int = _doc("BCM pin of the Listen on/off button.", default=24)
    status_led: int = _doc("BCM pin of the status LED; -1 = none.", default=25)
    pull_up: bool = _doc("Buttons connect the pin to GND (internal pull-up).", default=True)
    debounce_s: float = _doc("Ignore button edges closer together than this, seconds.", default=0.05,
                             min=0.0, max=1.0)


@dataclass(frozen=True)
class SliderSettings:
    output: str = _doc("What shows the slider: servo, angular_servo, pwmled, or none.", default="servo",
                       choices=("servo", "angular_servo", "pwmled", "none"))
    pin: int = _doc("BCM pin of the servo signal (or the LED).", default=18)
    min_pulse_width: float = _doc("Servo pulse at position 0, seconds.", default=0.001, min=0.0001, max=0.01)
    max_pulse_width: float = _doc("Servo pulse at position 10, seconds.", default=0.002, min=0.0001, max=0.01)
    min_angle: float = _doc("angular_servo: angle at position 0, degrees.", default=-90.0, min=-360.0, max=360.0)
    max_angle: float = _doc("angular_servo: angle at position 10, degrees.", default=90.0, min=-360.0, max=360.0)
    initial: float = _doc("Position at first start (later starts restore the saved one), 0..10.", default=5.0,
                          min=SLIDER_MIN, max=SLIDER_MAX)
    detach_after_s: float = _doc("Stop driving the servo this long after the last move, so it does not hum; "
                                 "0 = never, seconds.", default=2.0, min=0.0, max=3600.0)

    def validate(self) -> list[str]:
        if self.min_pulse_width >= self.max_pulse_width:
            return [f"slider.min_pulse_width = {self.min_pulse_width} must be below slider.max_pulse_width = "
                    f"{self.max_pulse_width}"]
        return []


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = _doc("Connect to an MQTT broker.", default=True)
    host: str = _doc("Broker host name or address.", default="localhost")
    port: int = _doc("Broker port (1883 plain, 8883 TLS).", default=1883, min=1, max=65535)
    client_id: str = _doc("MQTT client id; '' = edge-slider-<device.id>.", default="")
    keepalive: int = _doc("Keepalive, seconds.", default=30, min=5, max=3600)
    protocol: str = _doc("MQTT protocol version.", default="5", choices=("5", "3.1.1"))
    username: str = _doc("Username; '' = anonymous.", default="")
    password: str = _doc("Password; better set $EDGE_SLIDER_MQTT_PASSWORD or password_file. Never logged.",
                         default="", secret=True)
    password_file: str = _doc("File whose first line is the password.", default="")
    tls: bool = _doc("Use TLS.", default=False)
    ca_file: str = _doc("CA certificate (PEM) to verify the broker; '' = system CAs.", default="")
    certfile: str = _doc("Client certificate (PEM) for mutual TLS.", default="")
    keyfile: str = _doc("Client key (PEM) for mutual TLS.", default="")
    tls_insecure_skip_verify: bool = _doc("TESTING ONLY: do not verify the broker's certificate or host name.",
                                          default=False)
    base_topic: str = _doc("Topic prefix; {device_id} is replaced.", default="edge-slider/{device_id}")
    discovery: bool = _doc("Publish Home Assistant MQTT discovery.", default=True)
    discovery_prefix: str = _doc("Home Assistant discovery prefix.", default="homeassistant")
    prediction_interval_s: float = _doc("Fewest seconds between two prediction messages (a changed label is "
                                        "sent at once); 0 = every hop.", default=0.1, min=0.0, max=3600.0)
    state_interval_s: float = _doc("Re-publish the state at least this often, seconds.", default=10.0,
                                   min=1.0, max=3600.0)
    max_payload_bytes: int = _doc("Largest command payload accepted, bytes.", default=4096, min=64, max=1_000_000)
    queue_size: int = _doc("Outgoing messages buffered while the broker is away (predictions are dropped first).",
                           default=500, min=10, max=100_000)

    def validate(self) -> list[str]:
        problems = []
        if (self.certfile == "") != (self.keyfile == ""):
            problems.append("mqtt.certfile and mqtt.keyfile: set both or neither")
        for key in ("ca_file", "certfile", "keyfile", "password_file"):
            value = getattr(self, key)
            if value and not Path(value).expanduser().is_file():
                problems.append(f"mqtt.{key} = {value!r}: no such file")
        if "#" in self.base_topic or "+" in self.base_topic:
            problems.append(f"mqtt.base_topic = {self.base_topic!r}: wildcards # and + are not allowed")
        return problems

    def resolved_password(self) -> str:
        """The password: password_file's first line, else the key (or $EDGE_SLIDER_MQTT_PASSWORD)."""
        if self.password_file:
            lines = Path(self.password_file).expanduser().read_text(encoding="utf-8").splitlines()
            return lines[0] if lines else ""
        return self.password

    def topic(self, device_id: str) -> str:
        return self.base_topic.replace("{device_id}", device_id).rstrip("/")


@dataclass(frozen=True)
class ServiceSettings:
    log_level: str = _doc("Logging level.", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    position_save_s: float = _doc("Save the slider position at most this often, seconds.", default=5.0,
                                  min=0.1, max=3600.0)


@dataclass(frozen=True)
class Config:
    """The whole configuration. Build with :func:`load_config`."""

    device: DeviceSettings = DeviceSettings()
    audio: AudioSettings = AudioSettings()
    frontend: FrontendSettings = FrontendSettings()
    classes: tuple[ClassSpec, ...] = DEFAULT_CLASSES
    collect: CollectSettings = CollectSettings()
    train: TrainSettings = TrainSettings()
    listen: ListenSettings = ListenSettings()
    buttons: ButtonSettings = ButtonSettings()
    slider: SliderSettings = SliderSettings()
    mqtt: MqttSettings = MqttSettings()
    service: ServiceSettings = ServiceSettings()
    web: WebSettings = WebSettings()
    source_path: str = ""
    """The file this config was read from ('' = built-in defaults)."""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def background_label(self) -> str | None:
        for c in self.classes:
            if c.background:
                return c.name
        return None

    def class_spec(self, label: str) -> ClassSpec:
        for c in self.classes:
            if c.name == label:
                return c
        raise ConfigError(f"unknown label {label!r}: configured labels are {', '.join(self.labels)}")

    @property
    def state_path(self) -> Path:
        return self.device.state_path

    @property
    def state(self) -> StateDir:
        """The files in the state dir, by name (:mod:`edge.statedir`)."""
        return StateDir(self.device.state_path)

    def redacted(self) -> dict[str, Any]:
        """The config as a dict, secrets replaced by '***', for logs."""
        out = dataclasses.asdict(self)
        for section, key in (("mqtt", "password"), ("web", "token")):
            out[section][key] = "***" if out[section][key] else ""
        return out

    def replace(self, section: str, **changes: Any) -> "Config":
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


_SECTION_TYPES = {"device": DeviceSettings, "audio": AudioSettings, "frontend": FrontendSettings,
                  "collect": CollectSettings, "train": TrainSettings, "listen": ListenSettings, "buttons": ButtonSettings,
                  "slider": SliderSettings, "mqtt": MqttSettings, "service": ServiceSettings, "web": WebSettings}


def _field_type(cls: type, name: str) -> type:
    return typing.get_type_hints(cls)[name]


def _coerce(value: Any, typ: type, where: str, problems: list[str], from_text: bool) -> Any:
    """Convert one value to the field's type, or record a problem and return None."""
    if from_text:  # environment variables are text
        try:
            if typ is bool:
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if typ is int:
                return int(value)
            if typ is float:
                return float(value)
            return value
        except ValueError:
            problems.append(f"{where} = {value!r}: expected {typ.__name__}")
            return None
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    problems.append(f"{where} = {value!r}: expected {typ.__name__}")
    return None


def _check_field(f: dataclasses.Field, value: Any, where: str, problems: list[str]) -> bool:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        problems.append(f"{where} = {value!r}: choose one of {', '.join(map(str, meta['choices']))}")
        return False
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where} = {value!r}: must be a finite number")
        return False
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        problems.append(f"{where} = {value!r}: allowed range is {rng}")
        return False
    return True


def _build(cls: type, raw: Mapping[str, Any], prefix: str, problems: list[str], text: bool = False,
           base: Any = None, where_of: Callable[[str], str] | None = None) -> Any:
    """Build one section dataclass from a mapping; unknown keys and bad values become problems.

    ``where_of(key)`` names a key in messages (default ``prefix.key``; the environment's variables
    are named as the user spelled them)."""
    base = base if base is not None else cls()
    names = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in raw.items():
        where = where_of(key) if where_of else f"{prefix}.{key}"
        if key not in names:
            problems.append(f"{where}: unknown key; valid keys are {', '.join(names)}")
            continue
        f = names[key]
        typed = _coerce(value, _field_type(cls, key), where, problems, text)
        if typed is None:
            continue
        if _check_field(f, typed, where, problems):
            changes[key] = typed
    obj = dataclasses.replace(base, **changes)
    if hasattr(obj, "validate"):
        problems.extend(obj.validate())
    return obj


def _build_classes(raw: Any, problems: list[str]) -> tuple[ClassSpec, ...]:
    if not isinstance(raw, dict) or not raw:
        problems.append("classes: expected a table of labels, e.g. [classes.left] action = \"step\" value = -0.1")
        return DEFAULT_CLASSES
    specs = []
    for name, body in raw.items():
        if not isinstance(body, dict):
            problems.append(f"classes.{name}: expected a table with action, value, button")
            continue
        spec = _build(ClassSpec, {**body, "name": name}, f"classes.{name}", problems)
        specs.append(spec)
    if len(specs) < 2:
        problems.append(f"classes: {len(specs)} class configured; at least 2 are needed to train a classifier")
    if sum(1 for s in specs if s.background) > 1:
        problems.append("classes: more than one class has background = true; mark exactly one (e.g. noise)")
    return tuple(specs)


def _check_pins(cfg: Config, problems: list[str]) -> None:
    used: dict[int, str] = {}
    pins = [(f"classes.{c.name}.button", c.button) for c in cfg.classes]
    pins += [("buttons.train", cfg.buttons.train), ("buttons.listen", cfg.buttons.listen),
             ("buttons.status_led", cfg.buttons.status_led)]
    if cfg.slider.output != "none":
        pins.append(("slider.pin", cfg.slider.pin))
    for where, pin in pins:
        if pin == NO_PIN:
            continue
        if pin not in VALID_BCM:
            problems.append(f"{where} = {pin}: BCM pins are 0..27, or -1 for none")
        elif pin in used:
            problems.append(f"{where} = {pin}: pin already used by {used[pin]}")
        else:
            used[pin] = where


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, by the documented lookup order; None = built-in defaults."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return p
    if env.get(CONFIG_ENV):
        p = Path(env[CONFIG_ENV]).expanduser()
        if not p.is_file():
            raise ConfigError(f"${CONFIG_ENV} = {env[CONFIG_ENV]}: no such file")
        return p
    for p in (SYSTEM_CONFIG, _user_config()):
        if p.is_file():
            return p
    return None


def load_config(path: str | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Read, merge and validate the configuration; raise ConfigError listing every problem.

    ``overrides`` are command-line values, ``{"device": {"state_dir": "..."}}``.
    """
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read ({exc})") from None
    return config_from_dict(raw, env, overrides, str(file or ""))


def config_from_dict(raw: Mapping[str, Any], env: Mapping[str, str] | None = None,
                     overrides: Mapping[str, Mapping[str, Any]] | None = None, source: str = "") -> Config:
    env = {} if env is None else env
    problems: list[str] = []
    raw = dict(raw)
    raw.pop("config_version", None)
    sections: dict[str, Any] = {}
    for name, cls in _SECTION_TYPES.items():
        body = raw.pop(name, {})
        if not isinstance(body, dict):
            problems.append(f"[{name}]: expected a table of keys")
            body = {}
        sections[name] = _build(cls, body, name, problems)
    classes = _build_classes(raw.pop("classes"), problems) if "classes" in raw else DEFAULT_CLASSES
    for extra in raw:
        problems.append(f"[{extra}]: unknown section; valid sections are "
                        f"{', '.join([*_SECTION_TYPES, 'classes'])}")
    # Environment: EDGE_SLIDER_<SECTION>_<KEY>
    for name, cls in _SECTION_TYPES.items():
        env_raw = {}
        for f in dataclasses.fields(cls):
            var = env_var(name, f.name)
            if var in env:
                env_raw[f.name] = env[var]
        if env_raw:
            sections[name] = _build(cls, env_raw, name, problems, text=True, base=sections[name],
                                    where_of=functools.partial(env_var, name))
    problems.extend(_unknown_env(env))
    for name, values in (overrides or {}).items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            sections[name] = _build(_SECTION_TYPES[name], values, f"--{name}", problems, base=sections[name])
    cfg = Config(classes=classes, source_path=source, **sections)
    _check_pins(cfg, problems)
    if cfg.background_label is None and cfg.collect.gate and cfg.collect.quiet_to_background:
        problems.append("collect.quiet_to_background = true needs a class with background = true "
                        "(or set collect.quiet_to_background = false)")
    if problems:
        raise ConfigError(problems)
    return cfg


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``: ``EDGE_SLIDER_LISTEN_THRESHOLD``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


OTHER_ENV = frozenset({CONFIG_ENV, "EDGE_SLIDER_BENCH_DIR", "EDGE_SLIDER_STATE"})
"""Variables with our prefix that are not config keys (the config file, the bench data, deploy/dev.sh's
state dir)."""


def _unknown_env(env: Mapping[str, str]) -> list[str]:
    """A misspelled override used to be ignored silently (the device ran with the old value): each
    EDGE_SLIDER_* variable that is no key is a problem naming the closest valid one."""
    import difflib
    valid = [env_var(name, f.name) for name, cls in _SECTION_TYPES.items() for f in dataclasses.fields(cls)]
    known = set(valid) | OTHER_ENV
    problems = []
    for var in sorted(v for v in env if v.startswith(ENV_PREFIX) and v not in known):
        close = difflib.get_close_matches(var, valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"overrides are named {ENV_PREFIX}<SECTION>_<KEY>"
        problems.append(f"{var}: not a config key ({hint}); fix or unset it")
    return problems


def field_docs() -> dict[str, list[tuple[str, Any, str]]]:
    """Section → [(key, default, doc)], for the example config and its test."""
    out = {}
    for name, cls in _SECTION_TYPES.items():
        out[name] = [(f.name, f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]
    return out

