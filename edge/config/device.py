"""The ``[device]`` and ``[service]`` sections: who the device is, where its state lives, logging."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from edge.config.fields import _doc


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """systemd's ``$STATE_DIRECTORY`` under the unit, else ``$XDG_STATE_HOME/edge-slider``."""
    env = os.environ if env is None else env
    if env.get("STATE_DIRECTORY"):
        # NOTE: systemd may pass several colon-separated dirs; the first is ours.
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-slider"


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
class ServiceSettings:
    log_level: str = _doc("Logging level.", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    position_save_s: float = _doc("Save the slider position at most this often, seconds.", default=5.0,
                                  min=0.1, max=3600.0)
