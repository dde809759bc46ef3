"""A private, anonymous Mosquitto on a free 127.0.0.1 port, for the benchmark and the soak."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def mosquitto_binary() -> str | None:
    """The broker binary (Debian installs it in /usr/sbin, often not on a user's PATH), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalBroker:
    """``start``/``stop`` may be called repeatedly (the soak takes it down for an outage)."""

    def __init__(self, workdir: Path):
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "LocalBroker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
