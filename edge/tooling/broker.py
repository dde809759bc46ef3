"""A private, anonymous Mosquitto on a free 127.0.0.1 port, for the benchmark, the soak and the tests
(tests/brokers.py builds its authenticated and TLS brokers on :func:`wait_listening` and :func:`free_port`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable


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


def wait_listening(proc: subprocess.Popen, host: str, port: int, timeout: float = 5.0,
                   log: Callable[[], str] = lambda: "") -> None:
    """Return once ``proc`` accepts connections on ``host:port``: a broker that exited, or never listened,
    raises with its log, instead of a client failing later with 'connection refused'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {log()}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on port {port} within {timeout} s: {log()}")


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

    def start(self, timeout: float = 5.0) -> "LocalBroker":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        try:
            wait_listening(self.proc, "127.0.0.1", self.port, timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(5)
            self.proc = None
