"""MQTT commands (``mqtt …``) — registered when the telemetry package provides them."""

from __future__ import annotations


def register(sub) -> None:
    try:
        from edge.telemetry import cli as telemetry_cli
    except ImportError:
        return
    telemetry_cli.register(sub)
