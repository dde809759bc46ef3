"""The ``[web]`` config section; kept here (not in edge.config) so the console owns its settings."""

from __future__ import annotations

import ipaddress
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
        return []
