"""The whole configuration (:class:`Config`, one field per section) and the section table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config.audio import AudioSettings, FrontendSettings
from edge.config.classes import DEFAULT_CLASSES, ClassSpec, CollectSettings
from edge.config.device import DeviceSettings, ServiceSettings
from edge.config.listen import ListenSettings
from edge.config.mqtt import MqttSettings
from edge.config.pins import ButtonSettings, SliderSettings
from edge.config.train import TrainSettings
from edge.errors import ConfigError
from edge.statedir import StateDir
from edge.web.settings import WebSettings


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


SECTION_TYPES = {"device": DeviceSettings, "audio": AudioSettings, "frontend": FrontendSettings,
                 "collect": CollectSettings, "train": TrainSettings, "listen": ListenSettings, "buttons": ButtonSettings,
                 "slider": SliderSettings, "mqtt": MqttSettings, "service": ServiceSettings, "web": WebSettings}
"""Section name → its dataclass, in file order (``[classes]`` is separate: a table of tables)."""
