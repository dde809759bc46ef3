"""The ``[web]`` config section; kept here (not in edge.config) so the console owns its settings."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass


def split_listen(listen: str) -> tuple[str, int]:
    """'host:port' → (host, port); raises ValueError with a one-line reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"web.listen = {listen!r}: expected host:port, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebSettings:
    listen: str = "127.0.0.1:8080"
    """host:port the console serves on (default 127.0.0.1:8080, this machine only); '' = no console. Beyond
    loopback a token is required. A port already taken is a warning: the device runs on without the console."""
    token: str = ""
    """Bearer token every request must carry (header or ?token=); required when listen is not loopback."""
    cert: str = ""
    """PEM certificate (chain) file: with it the console speaks HTTPS only. Needs web.key."""
    key: str = ""
    """PEM private key file for web.cert."""
    hold_audio_mb: float = 20.0
    """Audio of recent holds kept for playback in the console (oldest first out); 0 = keep none."""

    def validate(self) -> list[str]:
        if not self.listen:
            return []
        try:
            host, _ = split_listen(self.listen)
        except ValueError as exc:
            return [str(exc)]
        if not is_loopback(host) and not self.token:
            return [f"web.token: required when web.listen = {self.listen!r} is not a loopback address; "
                    "set web.token or listen on 127.0.0.1"]
        if not 0 <= self.hold_audio_mb <= 10_000:
            return [f"web.hold_audio_mb = {self.hold_audio_mb}: must be between 0 and 10000 (MB; 0 keeps no audio)"]
        return self._tls_problems()

    def _tls_problems(self) -> list[str]:
        if bool(self.cert) != bool(self.key):
            given, missing = ("web.cert", "web.key") if self.cert else ("web.key", "web.cert")
            return [f"{missing}: needed with {given} for HTTPS; set both, or neither for plain HTTP"]
        for name, path in (("web.cert", self.cert), ("web.key", self.key)):
            if path and not os.access(path, os.R_OK):
                return [f"{name} = {path!r}: no readable file there; give the PEM file's path, or '' for plain HTTP"]
        return []
